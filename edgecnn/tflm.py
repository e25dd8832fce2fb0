"""TensorFlow Lite Micro as a second, all-integer reference (``verify --against tflm``).

TFLM runs every op with gemmlowp's double rounding (fully connected included), so it agrees
with edgecnn's ``double`` policy, and with firmware exported with ``--rounding double``. Its
arena reuses buffers, so only the output tensor can be compared.
"""

from __future__ import annotations

import numpy as np

from .errors import EdgecnnError, ModelFormatError

ARENA_BYTES = 64 << 20  # generous: the interpreter only needs what the model plans


def tflm_version() -> str:
    try:
        from importlib.metadata import version
        return "tflite-micro " + version("tflite-micro")
    except Exception:
        return "tflite-micro"


class TFLMRunner:
    """One model file in TFLM's Python interpreter, with LiteRTRunner's ``invoke``."""

    def __init__(self, path: str, outputs: int = 1):
        self.outputs = outputs
        try:
            from tflite_micro.python.tflite_micro import runtime
        except ImportError:
            raise EdgecnnError("TFLite Micro is not installed: pip install tflite-micro") from None
        try:
            self.interpreter = runtime.Interpreter.from_file(path, arena_size=ARENA_BYTES)
        except (RuntimeError, ValueError) as e:
            raise ModelFormatError(f"{path}: TFLite Micro cannot load it "
                                   f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None

    def invoke(self, x: np.ndarray) -> np.ndarray:
        return self.invoke_all(x)[0]

    def invoke_all(self, x: np.ndarray) -> list:
        self.interpreter.set_input(x, 0)
        self.interpreter.invoke()
        return [np.array(self.interpreter.get_output(i), copy=True) for i in range(self.outputs)]
