"""Export: a pruned checkpoint to an artifact (ONNX + kernel library + manifest)."""
