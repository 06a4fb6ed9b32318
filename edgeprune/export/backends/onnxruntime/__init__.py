"""The ONNX Runtime backend: sparse ONNX with the edgeprune custom-op domain, run by stock
onnxruntime plus the kernel library."""
