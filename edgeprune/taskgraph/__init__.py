"""The multi-task model contract: discovering the task graph and extracting tasks."""
