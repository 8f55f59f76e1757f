"""rnnq: float ONNX recurrent networks -> integer-only fixed-point programs."""

__version__ = "0.1.0"
