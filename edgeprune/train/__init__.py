"""Training under masks: fine-tuning with the pruned weights held at zero."""
