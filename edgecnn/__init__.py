"""edgecnn: int8 CNNs from PyTorch/ONNX/TFLite to CPUs and microcontrollers, checked bit for bit.

The Python API (the CLI calls the same functions):

- ``edgecnn.convert(source, output, arch=..., calib=[...])``: a float model -> int8 ``.tflite``
- ``edgecnn.load(path)`` -> ``Model``; ``model.predict(image_or_batch, top_k=5)``
- ``edgecnn.evaluate(model, data, float_source, per_layer=True)`` -> ``EvalReport``
- ``edgecnn.set_preprocess(model, output, edgecnn.Preprocess(...))``: preprocessing for a
  ``.tflite`` edgecnn did not write
- ``edgecnn.EdgecnnError``: every error a user can cause (exit code 2 in the CLI)
"""

__version__ = "0.1.0"

# Bound before the function of the same name: importing the submodule edgecnn.convert sets the
# package attribute to the module, so it is imported first and the name then rebound.
from . import convert as _convert_module  # noqa: E402
from .errors import EdgecnnError  # noqa: E402
from .ir import Preprocess  # noqa: E402

convert = _convert_module.convert
ConvertResult = _convert_module.ConvertResult

# Imported on first use, so ``import edgecnn.ir`` does not load the kernels or matplotlib.
_LAZY = {
    "load": ("model", "load"),
    "Model": ("model", "Model"),
    "Prediction": ("model", "Prediction"),
    "evaluate": ("eval_report", "evaluate"),
    "EvalReport": ("evaluation", "EvalReport"),
    "set_preprocess": ("annotate", "set_preprocess"),
}

__all__ = ["__version__", "convert", "ConvertResult", "EdgecnnError", "Preprocess"] + sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'edgecnn' has no attribute {name!r}")


def __dir__():
    """The public API (submodules stay importable, but are not the API)."""
    return sorted(__all__)
