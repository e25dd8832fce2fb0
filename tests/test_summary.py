"""summary: the lecture's numbers for LeNet-5 and AlexNet, float and int8, text and JSON.

Weights are zero-stride broadcasts: the summary reads only shapes and dtypes, so AlexNet's
61 million parameters cost no memory here.
"""

import json

import numpy as np
import pytest

from edgecnn import ir, shapes, ops
from edgecnn.errors import ArchitectureError
from edgecnn.summary import format_summary, summarize


def weight(shape, dtype=np.float32):
    return np.broadcast_to(np.zeros((), dtype), shape)


def conv(name, k_out, f, c_in, stride=1, pad=0, activation="none", int8=False):
    return ops.Conv2D(name, weight((k_out, f, f, c_in), np.int8 if int8 else np.float32),
                     weight((k_out,), np.int32 if int8 else np.float32), stride=(stride, stride),
                     padding=(pad,) * 4, activation=activation)


def dense(name, n_out, n_in, activation="none", int8=False):
    return ops.FullyConnected(name, weight((n_out, n_in), np.int8 if int8 else np.float32),
                             weight((n_out,), np.int32 if int8 else np.float32),
                             activation=activation)


def build(name, input_shape, layers, dtype="float32"):
    x = ir.Tensor("input", input_shape, dtype)
    return shapes.infer_shapes(ir.sequential(x, layers, name=name))


def lenet5(int8=False):
    q = dict(int8=int8)
    return build("lenet5", (1, 32, 32, 1), [
        conv("conv1", 6, 5, 1, activation="relu", **q),
        ops.MaxPool2D("pool1", (2, 2), (2, 2)),
        conv("conv2", 16, 5, 6, activation="relu", **q),
        ops.MaxPool2D("pool2", (2, 2), (2, 2)),
        ops.Reshape("flatten"),
        dense("fc1", 120, 400, "relu", **q),
        dense("fc2", 84, 120, "relu", **q),
        dense("fc3", 10, 84, **q),
        ops.Softmax("softmax"),
    ], "int8" if int8 else "float32")


def alexnet():
    """torchvision's AlexNet layout, NHWC."""
    return build("alexnet", (1, 224, 224, 3), [
        conv("conv1", 64, 11, 3, stride=4, pad=2, activation="relu"),
        ops.MaxPool2D("pool1", (3, 3), (2, 2)),
        conv("conv2", 192, 5, 64, pad=2, activation="relu"),
        ops.MaxPool2D("pool2", (3, 3), (2, 2)),
        conv("conv3", 384, 3, 192, pad=1, activation="relu"),
        conv("conv4", 256, 3, 384, pad=1, activation="relu"),
        conv("conv5", 256, 3, 256, pad=1, activation="relu"),
        ops.MaxPool2D("pool5", (3, 3), (2, 2)),
        ops.Reshape("flatten"),
        dense("fc6", 4096, 9216, "relu"),
        dense("fc7", 4096, 4096, "relu"),
        dense("fc8", 1000, 4096),
    ])


def by_name(summary):
    return {layer.name: layer for layer in summary.layers}


def test_lenet5_params():
    s = by_name(summarize(lenet5()))
    assert [s[n].params for n in ("conv1", "conv2", "fc1", "fc2", "fc3")] == \
        [156, 2416, 48120, 10164, 850]
    assert s["pool1"].params == s["flatten"].params == s["softmax"].params == 0
    assert summarize(lenet5()).total_params == 61706


def test_lenet5_output_shapes_follow_w2_formula():
    s = by_name(summarize(lenet5()))
    assert s["conv1"].output_shape == (1, 28, 28, 6)  # (32 - 5 + 0) / 1 + 1
    assert s["pool1"].output_shape == (1, 14, 14, 6)
    assert s["conv2"].output_shape == (1, 10, 10, 16)
    assert s["pool2"].output_shape == (1, 5, 5, 16)
    assert s["flatten"].output_shape == (1, 400)
    assert s["fc3"].output_shape == (1, 10)


def test_lenet5_macs():
    summary = summarize(lenet5())
    s = by_name(summary)
    assert s["conv1"].macs == 28 * 28 * 6 * 25 == 117600
    assert s["conv2"].macs == 10 * 10 * 16 * 150 == 240000
    assert (s["fc1"].macs, s["fc2"].macs, s["fc3"].macs) == (48000, 10080, 840)
    assert s["pool1"].macs == s["softmax"].macs == 0
    assert summary.total_macs == 117600 + 240000 + 48000 + 10080 + 840


def test_lenet5_receptive_fields():
    s = by_name(summarize(lenet5()))
    assert [s[n].receptive_field for n in ("conv1", "pool1", "conv2", "pool2", "flatten")] == \
        [(5, 5), (6, 6), (14, 14), (16, 16), (16, 16)]
    assert s["fc1"].receptive_field == s["fc3"].receptive_field == (32, 32)  # whole input
    assert s["softmax"].receptive_field == (32, 32)


def test_lenet5_float_memory():
    summary = summarize(lenet5())
    s = by_name(summary)
    assert summary.input_bytes == 32 * 32 * 4
    assert s["conv1"].activation_bytes == 28 * 28 * 6 * 4
    assert s["conv1"].weight_bytes == 156 * 4
    assert summary.total_weight_bytes == 61706 * 4
    assert (summary.largest_activation, summary.largest_activation_bytes) == ("conv1", 18816)
    # Ping-pong: pool1 holds conv1's output (18816) and its own (4704) at once.
    assert (summary.peak_layer, summary.peak_activation_bytes) == ("pool1", 18816 + 4704)


def test_lenet5_int8_memory():
    summary = summarize(lenet5(int8=True))
    s = by_name(summary)
    assert summary.quantized
    assert s["conv1"].activation_bytes == 28 * 28 * 6
    assert s["conv1"].weight_bytes == 150 + 6 * 4  # int8 weights, int32 bias
    assert s["fc1"].weight_bytes == 48000 + 120 * 4
    assert summary.total_params == 61706
    assert summary.total_weight_bytes == (61706 - 236) + 236 * 4  # 6+16+120+84+10 biases
    assert summary.peak_activation_bytes == 4704 + 1176


def test_alexnet_known_numbers():
    summary = summarize(alexnet())
    s = by_name(summary)
    assert s["conv1"].output_shape == (1, 55, 55, 64)  # (224 - 11 + 4) / 4 + 1
    assert s["pool1"].output_shape == (1, 27, 27, 64)
    assert s["pool2"].output_shape == (1, 13, 13, 192)
    assert s["pool5"].output_shape == (1, 6, 6, 256)
    assert s["conv1"].params == (11 * 11 * 3) * 64 + 64 == 23296
    assert summary.total_params == 61_100_840
    assert summary.total_macs == 714_188_480  # torchvision: 0.71 GFLOPS
    assert [s[n].receptive_field[0] for n in
            ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5")] == \
        [11, 19, 51, 67, 99, 131, 163, 195]
    assert s["fc6"].receptive_field == (224, 224)


def test_batchnorm_counts_four_values_per_channel():
    c = 8
    bn = ops.BatchNorm("bn", *(np.ones(c, np.float32) for _ in range(4)), eps=1e-5)
    s = summarize(build("bn", (1, 4, 4, 3), [conv("c", c, 3, 3, pad=1), bn]))
    assert (s.layers[1].params, s.layers[1].weight_bytes, s.layers[1].macs) == (32, 128, 0)
    assert s.layers[1].type == "BatchNorm"


def test_dilation_stride_and_asymmetric_padding_in_receptive_field():
    layer = ops.Conv2D("dil", weight((4, 3, 3, 1)), None, stride=(2, 1), dilation=(2, 2),
                      padding=(0, 1, 2, 0))
    s = summarize(build("d", (1, 16, 16, 1), [layer, ops.MaxPool2D("p", (2, 2), (2, 2))]))
    assert s.layers[0].receptive_field == (5, 5)  # 1 + (3 - 1) * 2 * 1
    assert s.layers[1].receptive_field == (5 + 2, 5 + 1)  # jumps (2, 1) after the stride
    assert s.layers[0].params == 36  # no bias
    assert s.layers[0].output_shape == (1, (16 + 1 - 5) // 2 + 1, (16 + 2 - 5) + 1, 4)


def test_missing_shapes_raise_with_a_hint():
    x = ir.Tensor("input", (1, 32, 32, 1), "float32")
    graph = ir.sequential(x, [ops.Reshape("flatten")])
    with pytest.raises(ArchitectureError, match="flatten: .*infer_shapes"):
        summarize(graph)


def test_format_summary_table():
    text = format_summary(summarize(lenet5()))
    lines = text.splitlines()
    assert lines[0] == "lenet5 (float32)"
    table = [ln for ln in lines if ln.startswith(("conv", "pool", "fc", "flatten", "softmax"))]
    assert len(table) == 9
    conv1 = lines[[i for i, ln in enumerate(lines) if ln.startswith("conv1")][0]]
    for cell in ("Conv2D+ReLU", "5x5 s1 p0", "28x28x6", "156", "117,600", "5x5", "18,816"):
        assert cell in conv1
    header = [ln for ln in lines if ln.startswith("layer")][0]
    assert len({len(ln) for ln in table + [header]}) <= 2  # right-aligned numbers: one width
    assert "parameters:          61,706" in text
    assert "23,520 bytes alive at once (at pool1)" in text
    assert "activation arena:    23,520 bytes" in text


def test_to_dict_is_json_ready():
    d = json.loads(json.dumps(summarize(lenet5(int8=True)).to_dict()))
    assert d["quantized"] is True
    assert d["totals"]["params"] == 61706
    assert d["layers"][0]["receptive_field"] == [5, 5]
    assert d["layers"][0]["kernel"] == [5, 5] and d["layers"][0]["padding"] == [0, 0, 0, 0]
    assert d["layers"][4]["kernel"] is None
    assert d["input_shape"] == [1, 32, 32, 1]


def test_flat_input_has_no_receptive_field():
    s = summarize(build("mlp", (1, 20), [dense("fc", 5, 20)]))
    assert s.layers[0].receptive_field is None
    assert s.total_params == 105
    assert "RF" in format_summary(s)
