"""Weight formats the kernels run (CSR, BSR, N:M, physically shrunk) and their ONNX operators.
NumPy and onnx only: the compiler and the board share them."""
