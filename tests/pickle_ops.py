"""Hand-written pickle opcodes for hostile and hand-made torch pickles (protocol 2 text).

Used by tests/test_pt_reader.py and tests/test_hostile_pickles.py to build exactly the byte
streams a malicious or unusual file would hold, without pickle.dumps deciding for us.
"""

import struct


def global_op(module, name):
    """GLOBAL: push ``module.name`` (the reader must never import it)."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def str_op(text):
    """BINUNICODE."""
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def int_op(n):
    """BININT (signed 32-bit)."""
    return b"J" + struct.pack("<i", n)


def int_tuple_op(items):
    """MARK, the ints, TUPLE."""
    return b"(" + b"".join(int_op(v) for v in items) + b"t"


class Reduce:
    """An object whose pickle says: call ``func(*args)`` when loading (REDUCE), the shape of
    every code-execution payload; the reader must refuse it, never call it."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args
