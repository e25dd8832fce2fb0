"""LiteRT (TFLite) as the cross-check: its reference kernels and its default XNNPACK path.

``ai_edge_litert`` is the maintained runtime; ``tflite_runtime`` (frozen at 2.14, numpy < 2)
is a fallback import only.
"""

from __future__ import annotations

import contextlib
import os
import sys

import numpy as np

from .errors import EdgecnnError, ModelFormatError

MODES = {"litert-ref": "LiteRT reference kernels (BUILTIN_REF)",
         "litert": "LiteRT default path (XNNPACK)"}


def _interpreter_module():
    try:
        from ai_edge_litert import interpreter
        return interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime import interpreter
        return interpreter
    except ImportError:
        raise EdgecnnError("LiteRT is not installed: pip install ai-edge-litert") from None


def litert_version() -> str:
    """The runtime the cross-check really loads, with its version."""
    mod = _interpreter_module()
    if mod.__name__.startswith("tflite_runtime"):
        import tflite_runtime
        return "tflite-runtime " + getattr(tflite_runtime, "__version__", "?")
    try:
        from importlib.metadata import version
        return "ai-edge-litert " + version("ai-edge-litert")
    except Exception:
        return "ai-edge-litert"


def reference_rounding() -> str:
    """edgecnn's rounding policy that equals this runtime's BUILTIN_REF kernels: ai-edge-litert
    2.x rescales FULLY_CONNECTED in double precision ("litert-ref"); tflite-runtime 2.14
    predates that and uses gemmlowp's double rounding everywhere ("double")."""
    return "double" if _interpreter_module().__name__.startswith("tflite_runtime") else "litert-ref"


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence LiteRT's C++ INFO lines ("Created TensorFlow Lite XNNPACK delegate") while an
    interpreter is built; its errors still arrive as Python exceptions."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # no real stderr (e.g. a test runner)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


class LiteRTRunner:
    """One model file in LiteRT. ``mode`` is "litert-ref" (BUILTIN_REF, every tensor kept) or
    "litert" (the default op resolver with XNNPACK)."""

    def __init__(self, path: str, mode: str = "litert-ref", threads: int = 1):
        mod = _interpreter_module()
        kwargs = {"model_path": path, "num_threads": threads}
        if mode == "litert-ref":
            kwargs.update(experimental_op_resolver_type=mod.OpResolverType.BUILTIN_REF,
                          experimental_preserve_all_tensors=True)
        elif mode != "litert":
            raise ValueError(mode)
        try:
            with _quiet_native_stderr():
                self.interpreter = mod.Interpreter(**kwargs)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelFormatError(f"{path}: LiteRT cannot load it ({str(e).splitlines()[0]})") from None
        self.mode = mode
        self._in = self.interpreter.get_input_details()[0]
        self._outs = [d["index"] for d in self.interpreter.get_output_details()]

    def invoke(self, x: np.ndarray) -> np.ndarray:
        """The first output for input ``x``."""
        return self.invoke_all(x)[0]

    def invoke_all(self, x: np.ndarray) -> list:
        """Every output, in the model's output order."""
        self.interpreter.set_tensor(self._in["index"], np.ascontiguousarray(x, self._in["dtype"]))
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(i).copy() for i in self._outs]

    def tensor(self, index: int) -> np.ndarray:
        """A tensor kept by experimental_preserve_all_tensors (reference mode)."""
        return self.interpreter.get_tensor(index).copy()
