"""The ONNX versions every graph edgeprune writes uses (no torch here: the device side reads it)."""

from typing import Final

OPSET: Final = 17
IR_VERSION: Final = 10  # onnx 1.23 writes 14 by default, which onnxruntime 1.31 refuses
