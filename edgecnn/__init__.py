"""edgecnn: int8 CNNs from PyTorch/ONNX/TFLite to CPUs and microcontrollers, checked bit for bit."""

__version__ = "0.1.0"
