"""Verify an artifact for another CPU without the board: run it under qemu-user in an emulated
Python with onnxruntime and compare every task output with the host PyTorch model."""
