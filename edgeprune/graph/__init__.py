"""The extracted model as a standard ONNX graph: exported from PyTorch by prune, carried inside
the checkpoint, and read by compile and verify, so no stage after prune needs the workload's
code (or imports anything a file names)."""
