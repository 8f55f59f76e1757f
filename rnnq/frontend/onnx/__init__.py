"""ONNX -> float IR: `import_onnx` (importer.py), one handler per ONNX op (handlers.py,
recurrent.py), the import state and layout helpers they share (context.py)."""

from rnnq.frontend.onnx.handlers import SUPPORTED_OPS
from rnnq.frontend.onnx.importer import import_onnx, load_model, model_bytes

__all__ = ["SUPPORTED_OPS", "import_onnx", "load_model", "model_bytes"]
