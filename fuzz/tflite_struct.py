"""Structured .tflite mutations: the fuzzer's bytes choose field edits on a real int8 model.

The byte-level ``tflite`` target mostly breaks the flatbuffer itself; this one keeps the file
well formed and changes what a hostile or corrupt model changes: tensor shapes, scales, zero
points, quantized dimensions, operator inputs and outputs, builtin options, opcode indices
and codes, buffer contents and sizes, names and the schema version. Edits go through the
schema's object API (``ModelT``), starting from the repo's int8 fixtures.

``mutated_model(data)`` returns the packed file; the bytes are read as a little program:
the first picks the seed model, then each group of bytes one edit (kind, target, value).
"""

from __future__ import annotations

import functools
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SEED_MODELS = ("fuzz/corpus/tflite/tiny_int8.tflite", "tests/fixtures/tflite/tf_small_same_avg.tflite",
               "tests/fixtures/tflite/tf_pad_tanh.tflite",
               "tests/fixtures/tflite/tf_lenet5_int8_io.tflite")
FLOATS = (1e-45, 1e-38, 2.0 ** -40, 2.0 ** -20, 1 / 256, 1 / 128, 0.02, 0.5, 1.0, 2.0 ** 20,
          2.0 ** 40, 3e38, 0.0, -1.0, float("nan"), float("inf"), 6.0 / 2 ** 31)
INTS = (0, 1, -1, 2, 3, 127, 128, -128, -129, 255, 256, 1000, 65535, 2 ** 31 - 1, -2 ** 31,
        2 ** 16, 7, 99)
INT32_DATA = (0, 1, -1, 2 ** 31 - 1, -2 ** 31, 2 ** 30, -2 ** 30, 12345, 2 ** 24)


class Picker:
    """Reads choices from the fuzzer's bytes; past the end every choice is 0."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def byte(self) -> int:
        b = self.data[self.pos] if self.pos < len(self.data) else 0
        self.pos += 1
        return b

    def below(self, n: int) -> int:
        if n <= 1:
            return 0
        v = self.byte() | self.byte() << 8
        return v % n

    def pick(self, seq):
        return seq[self.below(len(seq))]

    @property
    def left(self) -> bool:
        return self.pos < len(self.data)


@functools.lru_cache(maxsize=None)
def _seed_bytes(i: int) -> bytes:
    with open(os.path.join(REPO, SEED_MODELS[i]), "rb") as f:
        return f.read()


def _set_array(obj, attr, p: Picker, values, dtype):
    arr = getattr(obj, attr)
    if arr is None or len(arr) == 0 or p.below(8) == 0:
        setattr(obj, attr, np.array([p.pick(values) for _ in range(1 + p.below(4))], dtype))
        return
    arr = np.array(arr, dtype).copy()
    arr[p.below(len(arr))] = p.pick(values)
    setattr(obj, attr, arr)


def _edit_quant(fb, t, p: Picker):
    q = t.quantization
    if q is None:
        q = t.quantization = fb.QuantizationParametersT()
    kind = p.below(6)
    if kind <= 1:
        with np.errstate(over="ignore"):
            _set_array(q, "scale", p, FLOATS, np.float32)
    elif kind == 2:
        _set_array(q, "zeroPoint", p, INTS, np.int64)
    elif kind == 3:
        q.quantizedDimension = p.pick((0, 1, 2, 3, -1, 9))
    elif kind == 4:
        n = len(q.scale) if q.scale is not None else 1
        q.scale = np.full(n, p.pick(FLOATS[:12]), np.float32)  # every channel at once
    else:
        t.quantization = None


def _edit_buffer(m, t, p: Picker):
    if not 0 <= t.buffer < len(m.buffers) or m.buffers[t.buffer].data is None:
        return
    raw = bytearray(bytes(m.buffers[t.buffer].data))
    kind = p.below(5)
    if kind == 0 and len(raw) >= 4:  # an int32 value (biases)
        i = p.below(len(raw) // 4) * 4
        raw[i:i + 4] = int(p.pick(INT32_DATA)).to_bytes(4, "little", signed=True)
    elif kind == 1 and raw:  # an int8 weight
        raw[p.below(len(raw))] = p.pick((0x80, 0x7F, 0x81, 0x00, 0xFF))
    elif kind == 2 and raw:  # every weight at one value
        raw = bytearray([p.pick((0x80, 0x7F, 0x81))]) * len(raw)
    elif kind == 3:
        raw = raw[:p.below(len(raw) + 1)]
    else:
        raw += bytes(p.below(9))
    m.buffers[t.buffer].data = np.frombuffer(bytes(raw), np.uint8).copy()


def _edit_operator(fb, m, sub, p: Picker):
    op = sub.operators[p.below(len(sub.operators))]
    kind = p.below(6)
    n = len(sub.tensors)
    if kind == 0 and op.inputs is not None and len(op.inputs):
        ins = np.array(op.inputs, np.int32).copy()
        ins[p.below(len(ins))] = p.pick((-1, 0, n - 1, n, p.below(n)))
        op.inputs = ins
    elif kind == 1 and op.inputs is not None:
        op.inputs = np.array(list(op.inputs)[:p.below(len(op.inputs) + 1)], np.int32)
    elif kind == 2:
        op.outputs = np.array([p.pick((0, n - 1, p.below(n)))], np.int32)
    elif kind == 3:
        op.opcodeIndex = p.pick((0, len(m.operatorCodes) - 1, len(m.operatorCodes), p.below(8)))
    elif kind == 4:
        oc = m.operatorCodes[p.below(len(m.operatorCodes))]
        oc.builtinCode = p.pick((0, 1, 3, 9, 17, 22, 25, 28, 14, 19, 21, 114, 6, 34, 32, 200))
        oc.deprecatedBuiltinCode = min(oc.builtinCode, 127)
    else:
        opts = op.builtinOptions
        fields = [f for f in vars(opts) if not f.startswith("_")] if opts is not None else []
        if fields:
            f = p.pick(sorted(fields))
            old = getattr(opts, f)
            if isinstance(old, float):
                setattr(opts, f, p.pick(FLOATS))
            elif isinstance(old, (bool, np.bool_)):
                setattr(opts, f, not old)
            elif isinstance(old, (int, np.integer)):
                setattr(opts, f, p.pick((0, 1, 2, 3, 4, 5, -1, 6, 100, 32767, 65535,
                                         2 ** 31 - 1)))
            else:
                setattr(opts, f, [p.pick((1, -1, 0, 8, 2 ** 31 - 1)) for _ in range(1 + p.below(4))])


def _edit(fb, m, p: Picker):
    sub = m.subgraphs[0]
    t = sub.tensors[p.below(len(sub.tensors))]
    kind = p.below(16)
    if kind < 6:
        _edit_quant(fb, t, p)
    elif kind < 9:
        _edit_buffer(m, t, p)
    elif kind < 12:
        _edit_operator(fb, m, sub, p)
    elif kind == 12 and t.shape is not None and len(t.shape):
        shape = np.array(t.shape, np.int32).copy()
        shape[p.below(len(shape))] = p.pick((0, 1, 2, 4, 7, 2 ** 31 - 1, -1, 1000))
        t.shape = shape
    elif kind == 13:
        t.name = p.pick((b"", b"x */ y", b"\x1b[2K\rfake", "\u202etxt".encode(), b"a" * 300,
                         b"\xff\xfe", b"%s%n"))
    elif kind == 14:
        t.type = p.pick((0, 2, 3, 9, 7, 16))
    else:
        m.version = p.pick((3, 0, 99, 2))


def mutated_model(data: bytes, edits_at_most: int = 6) -> bytes:
    """A packed .tflite: a seed model with the edits ``data`` encodes. An edit the schema
    cannot hold (2^31 - 1 in an int8 option field: flatbuffers' Pack raises) is dropped."""
    import struct

    import flatbuffers

    from edgecnn.tflite import schema
    fb = schema.load()
    p = Picker(data)
    good = _seed_bytes(p.below(len(SEED_MODELS)))
    for _ in range(1 + p.below(edits_at_most)):
        if not p.left:
            break
        m = fb.ModelT.InitFromPackedBuf(bytearray(good), 0)
        _edit(fb, m, p)
        builder = flatbuffers.Builder(1024)
        try:
            builder.Finish(m.Pack(builder), file_identifier=schema.FILE_IDENTIFIER)
        except (TypeError, ValueError, OverflowError, struct.error):
            continue
        good = bytes(builder.Output())
    return good
