"""The structured ONNX fuzz target: input bytes are read as choices that pick one of a few
small, valid ONNX models (built here with the onnx helper API, covering every op edgecnn
reads) and mutate it through the protobuf API, field by field: attributes (values, types,
names), node inputs and outputs (rewired, emptied, self-loops), op types and domains, node
order, initializers (dims, data types, raw/typed/external data), the opset, the graph's input
and outputs. The mutated model is serialized and goes through the whole ONNX import path:
load_onnx, the float passes, and one float run, under a 256 MB --max-memory.

Byte-level mutations of whole files are the ``onnx`` target next to it; this one reaches the
handlers with models protobuf parses.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

INTS = (0, 1, -1, 2, 3, 4, 7, 8, 64, 255, 2600, 100_000, 1 << 31, (1 << 63) - 1, -(1 << 63))
FLOATS = (0.0, -0.0, 1.0, 6.0, -1.0, 1e-45, 3.4e38, float("inf"), float("nan"), 0.5)
STRINGS = (b"NOTSET", b"SAME_UPPER", b"SAME_LOWER", b"VALID", b"constant", b"reflect",
           b"\xff\xfe", b"")
OPS = ("Conv", "Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean",
       "Flatten", "Reshape", "Gemm", "MatMul", "Add", "Mul", "BatchNormalization", "Softmax",
       "Concat", "Pad", "Identity", "Dropout", "Shape", "Gather", "Unsqueeze", "Squeeze",
       "Cast", "Slice", "Constant", "ConstantOfShape", "Sigmoid", "Tanh", "LeakyRelu", "")
ATTRS = ("pads", "strides", "kernel_shape", "dilations", "group", "auto_pad", "axis", "axes",
         "keepdims", "ceil_mode", "epsilon", "transB", "alpha", "beta", "min", "max", "to",
         "value", "count_include_pad", "allowzero", "mode", "bogus")


class Choices:
    """The fuzz input as a stream of small decisions (0 once it runs out)."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def byte(self) -> int:
        self.pos += 1
        return self.data[self.pos - 1] if self.pos <= len(self.data) else 0

    def pick(self, seq):
        return seq[self.byte() % len(seq)] if len(seq) else None


def _w(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _model(nodes, inits, in_shape, opset=13, outputs=("y",)):
    graph = helper.make_graph(
        nodes, "fuzz", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def base_models():
    n = helper.make_node
    residual = _model([
        n("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        n("BatchNormalization", ["c1", "g", "bb", "m", "v"], ["bn"], epsilon=1e-3),
        n("Relu", ["bn"], ["r1"]),
        n("MaxPool", ["r1"], ["p"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        n("Conv", ["p", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        n("Add", ["c2", "p"], ["a"]),
        n("Sigmoid", ["p"], ["s"]),
        n("Concat", ["a", "s"], ["cat"], axis=1),
        n("GlobalAveragePool", ["cat"], ["gap"]),
        n("Flatten", ["gap"], ["f"]),
        n("Gemm", ["f", "fc", "fcb"], ["y"], transB=1)],
        dict(w1=_w(4, 2, 3, 3), b1=_w(4), g=_w(4) + 2, bb=_w(4), m=_w(4), v=_w(4) ** 2 + 1,
             w2=_w(4, 4, 3, 3), fc=_w(3, 8), fcb=_w(3)), (1, 2, 8, 8))
    mobile = _model([
        n("Conv", ["x", "dw"], ["d"], group=4, pads=[1, 1, 1, 1], strides=[2, 2]),
        n("Constant", [], ["lo"], value=numpy_helper.from_array(np.float32(0.0))),
        n("Constant", [], ["hi"], value=numpy_helper.from_array(np.float32(6.0))),
        n("Clip", ["d", "lo", "hi"], ["r6"]),
        n("Conv", ["r6", "gw"], ["g2"], group=2),
        n("ReduceMean", ["g2"], ["mean"], axes=[2, 3], keepdims=1),
        n("Shape", ["mean"], ["shp"]),
        n("Constant", [], ["zero"], value=numpy_helper.from_array(np.int64(0))),
        n("Gather", ["shp", "zero"], ["batch"]),
        n("Unsqueeze", ["batch", "ax"], ["b1"]),
        n("Concat", ["b1", "minus1"], ["newshape"], axis=0),
        n("Reshape", ["mean", "newshape"], ["flat"]),
        n("MatMul", ["flat", "mm"], ["mmo"]),
        n("Add", ["mmo", "mmb"], ["logits"]),
        n("Softmax", ["logits"], ["y"], axis=1)],
        dict(dw=_w(8, 1, 3, 3), gw=_w(6, 4, 1, 1), ax=np.array([0], np.int64),
             minus1=np.array([-1], np.int64), mm=_w(6, 5), mmb=_w(5)), (1, 4, 8, 8))
    shapes = _model([
        n("Pad", ["x", "pads"], ["pd"]),
        n("AveragePool", ["pd"], ["ap"], kernel_shape=[2, 2], strides=[2, 2]),
        n("Conv", ["ap", "w"], ["c"], auto_pad="SAME_UPPER"),
        n("Dropout", ["c"], ["dr"]),
        n("Identity", ["dr"], ["id"]),
        n("Tanh", ["id"], ["t"]),
        n("ConstantOfShape", ["cs"], ["ones"], value=numpy_helper.from_array(
            np.array([1], np.int64))),
        n("Slice", ["ones", "st", "en"], ["sl"]),
        n("Cast", ["sl"], ["cast"], to=7),
        n("Squeeze", ["cast", "ax"], ["sq"]),
        n("Flatten", ["t"], ["f"], axis=1),
        n("Gemm", ["f", "fc"], ["y"], transB=1)],
        dict(pads=np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), w=_w(3, 1, 3, 3), fc=_w(2, 48),
             cs=np.array([1, 2], np.int64), st=np.array([0], np.int64),
             en=np.array([1], np.int64), ax=np.array([0], np.int64)), (1, 1, 6, 6), opset=17)
    return [residual, mobile, shapes]


def _tensor_names(model):
    names = ["x"] + [t.name for t in model.graph.initializer]
    for node in model.graph.node:
        names += list(node.output)
    return names


def _set_attribute(c, node):
    name = c.pick(ATTRS)
    for a in list(node.attribute):
        if a.name == name:
            node.attribute.remove(a)
    kind = c.byte() % 6
    if kind == 0:
        node.attribute.append(helper.make_attribute(name, c.pick(INTS)))
    elif kind == 1:  # typed by hand: the helper cannot type an empty list
        a = node.attribute.add()
        a.name, a.type = name, 7
        a.ints.extend(c.pick(INTS) for _ in range(c.byte() % 6))
    elif kind == 2:
        node.attribute.append(helper.make_attribute(name, c.pick(FLOATS)))
    elif kind == 3:
        a = node.attribute.add()
        a.name, a.type = name, 6
        a.floats.extend(c.pick(FLOATS) for _ in range(c.byte() % 5))
    elif kind == 4:
        a = node.attribute.add()
        a.name, a.type, a.s = name, 3, c.pick(STRINGS)
    else:
        node.attribute.append(helper.make_attribute(name, numpy_helper.from_array(
            np.array([c.pick(INTS) % 7] * (c.byte() % 3), np.int64))))


def _mutate_initializer(c, t):
    kind = c.byte() % 6
    if kind == 0:
        t.dims[:] = [c.pick(INTS) % 70000 if c.byte() % 4 else c.pick(INTS) % (1 << 40)
                     for _ in range(c.byte() % 5)]
    elif kind == 1:
        t.data_type = c.byte() % 27
    elif kind == 2:
        t.raw_data = t.raw_data[: len(t.raw_data) * (c.byte() % 4) // 4]
    elif kind == 3:
        t.ClearField("raw_data")
        t.float_data.extend([c.pick(FLOATS) for _ in range(c.byte() % 9)])
    elif kind == 4:
        t.data_location = TensorProto.EXTERNAL
        e = t.external_data.add()
        e.key, e.value = "location", c.pick(("w.bin", "../w.bin", "/etc/passwd", "", "x/../w"))
    else:
        t.dims.append(c.byte() % 3)


def mutate(model, c: Choices) -> None:
    g = model.graph
    for _ in range(c.byte() % 5):
        nodes = list(g.node)
        node = c.pick(nodes)
        kind = c.byte() % 12
        if node is None:
            return
        if kind in (0, 1):
            _set_attribute(c, node)
        elif kind == 2 and node.attribute:
            node.attribute.remove(c.pick(list(node.attribute)))
        elif kind == 3:
            names = _tensor_names(model) + ["", "undefined"] + list(node.output)
            k = c.byte() % (len(node.input) + 1)
            if k == len(node.input):
                node.input.append(c.pick(names))
            else:
                node.input[k] = c.pick(names)
        elif kind == 4:
            node.output[:] = [c.pick(_tensor_names(model) + ["", "fresh"])
                              for _ in range(c.byte() % 3)]
        elif kind == 5:
            node.op_type = c.pick(OPS)
        elif kind == 6:
            i, j = c.byte() % len(nodes), c.byte() % len(nodes)
            nodes[i], nodes[j] = nodes[j], nodes[i]
            del g.node[:]
            g.node.extend(nodes)
        elif kind == 7 and len(nodes) > 1:
            g.node.remove(node)
        elif kind == 8 and g.initializer:
            _mutate_initializer(c, c.pick(list(g.initializer)))
        elif kind == 9:
            model.opset_import[0].version = c.byte() % 30
        elif kind == 10:
            dims = g.input[0].type.tensor_type.shape.dim
            if dims:
                d = dims[c.byte() % len(dims)]
                d.dim_value = c.pick(INTS) % 100_000 if c.byte() % 4 else 0
                if c.byte() % 5 == 0:
                    d.dim_param = "n"
        else:
            g.output[0].name = c.pick(_tensor_names(model) + ["missing"])


def build(data: bytes) -> bytes:
    """The model ``data`` describes, serialized."""
    c = Choices(data)
    models = base_models()
    model = models[c.byte() % len(models)]
    mutate(model, c)
    return model.SerializeToString()
