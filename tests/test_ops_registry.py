"""The op registry is the one list of what edgecnn runs: every op class is complete, and the
lists in README.md and in the reader's error message come from it."""

from __future__ import annotations

import importlib.util
import os

from edgecnn import ops
from edgecnn.ops.base import Op

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tool():
    spec = importlib.util.spec_from_file_location("ops_table", os.path.join(ROOT, "tools",
                                                                             "ops_table.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_lists_exactly_the_registered_ops():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    assert _tool().readme_block(readme) == ops.supported_table(), \
        "README's ops table is stale: run python tools/ops_table.py --write"


def test_every_int8_op_class_has_each_part():
    """An op read from .tflite files is runnable: shape, prepare, write and C emission are its
    own, not the base class's refusals."""
    for cls in ops.NODE_TYPES:
        if not cls.tflite_ops:
            continue
        for part in ("prepare", "to_tflite", "from_tflite", "emit_c"):
            if cls.__name__ == "Reshape" and part == "emit_c":
                continue  # a view: no kernel runs and no C is written
            assert getattr(cls, part) is not getattr(Op, part), f"{cls.__name__}.{part}"
        assert cls.summary, cls.__name__


def test_supported_builtin_names_are_unique_and_in_the_reader_error():
    from edgecnn.tflite import reader
    names = [n for cls in ops.NODE_TYPES for n in cls.tflite_ops]
    assert len(names) == len(set(names)) == len(ops.SUPPORTED_TFLITE_OPS)
    assert reader.SUPPORTED_OPS == ops.SUPPORTED_TFLITE_OPS
