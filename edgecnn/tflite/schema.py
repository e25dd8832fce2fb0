"""The TFLite flatbuffer schema, from a package: never hand-copied.

``load()`` returns a module holding the generated bindings with the flatbuffers object API
(``ModelT``, ``SubGraphT``, ``TensorT``, ``OperatorT``, ``BufferT``, ...). Sources, in order:
``ai_edge_litert.schema_py_generated`` (LiteRT), ``tensorflow.lite.python.schema_py_generated``
(TensorFlow), then the pure-Python ``tflite`` package if its build carries the object API
(the releases on PyPI up to 2.18 generate only the reader classes, so they are refused with
a clear message rather than half working).
"""

from __future__ import annotations

import functools
import importlib

from ..errors import EdgecnnError

FILE_IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3

_CANDIDATES = (
    "ai_edge_litert.schema_py_generated",
    "tensorflow.lite.python.schema_py_generated",
    "tflite",
)


@functools.cache
def load():
    """The schema module; raises EdgecnnError if no installed package provides it."""
    tried = []
    for name in _CANDIDATES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            tried.append(f"{name} (not installed)")
            continue
        if hasattr(module, "ModelT"):
            return module
        tried.append(f"{name} (no flatbuffers object API)")
    raise EdgecnnError(
        "reading or writing .tflite files needs the TFLite schema bindings; tried "
        + ", ".join(tried) + ". ---> HINT: pip install ai-edge-litert")


def enum_names(enum_class) -> dict[int, str]:
    """{value: NAME} of a generated enum class such as ``BuiltinOperator``."""
    return {value: name for name, value in vars(enum_class).items()
            if not name.startswith("_") and isinstance(value, int)}
