"""edgecnn: int8 CNNs from PyTorch/ONNX/TFLite to CPUs and microcontrollers, checked bit for bit."""

__version__ = "0.1.0"


def __getattr__(name):
    """``edgecnn.load`` without importing the runtime for every ``import edgecnn.ir``."""
    if name == "load":
        from .model import load
        return load
    raise AttributeError(f"module 'edgecnn' has no attribute {name!r}")
