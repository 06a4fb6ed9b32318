"""The per-layer cost model: calibration tables measured on a target, how they are measured, and
single-layer timing. Device side: numpy, onnx and onnxruntime only."""
