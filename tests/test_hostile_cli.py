"""Hostile models and files through the CLI: terminal escapes in names, NaN weights, unreadable
calibration sets, batch-4 inputs, metadata that disagrees with the model, RESHAPE shapes.

Every case: exit 2 and one line on stderr, or, for names, the same output with every control
character shown escaped (edgecnn/text.py).
"""

import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from edgecnn import ir
from edgecnn.cli import main
from edgecnn.demo import data_dir
from edgecnn.tflite.writer import to_flatbuffer
from test_hostile_tflite import model_t, pack, tensor, tiny_graph

PT = os.path.join(os.path.dirname(__file__), "fixtures", "pt")
SPOOF = "\x1b[2K\r7 1.000\u202e"  # erase the line, return, print a fake result, flip text


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_line_error(result, *text):
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), \
        result.output
    for t in text:
        assert t in lines[0], lines[0]


def _digit():
    return sorted(os.listdir(os.path.join(data_dir(), "samples")))[0]


def _graph_with_names(name):
    """The tiny graph with ``name`` in every layer, tensor and graph name and in a label."""
    g = tiny_graph()
    x = ir.replace(g.input, name=f"{name}in")
    nodes = [ir.replace(node, name=f"{name}{k}", output=None) for k, node in enumerate(g.nodes)]
    graph = ir.sequential(x, nodes, name=name, preprocess=ir.Preprocess(height=6, width=6,
                                                                        color="L"),
                          labels=(SPOOF, "b\rc", "d\ne"))
    old = dict(zip((n.name for n in graph.nodes), g.nodes))  # keep shapes and quantization
    return graph.replace(nodes=tuple(
        ir.replace(n, output=ir.replace(old[n.name].output, name=n.output.name))
        for n in graph.nodes))


def test_names_and_labels_from_the_model_are_printed_escaped(tmp_path):
    path = tmp_path / "spoof.tflite"
    path.write_bytes(to_flatbuffer(_graph_with_names(SPOOF)))
    image = os.path.join(data_dir(), "samples", _digit())
    outputs = {"infer": run("infer", path, image, "--top-k", "3"),
               "verify": run("verify", path, "--count", "1"),
               "summary": run("summary", path),
               "export-c": run("export-c", path, "-o", tmp_path / "fw")}
    for command, result in outputs.items():
        assert result.exit_code == 0, (command, result.output)
        text = result.output
        assert not any(c in text for c in "\x1b\r\u202e"), (command, text)
        assert "\\x1b[2K\\r7 1.000\\u202e" in text, (command, text)
    assert "b\\rc" in outputs["infer"].output and "d\\ne" in outputs["infer"].output


def test_an_error_naming_a_hostile_tensor_is_one_escaped_line(tmp_path):
    m = model_t()
    pool = tensor(m, "pool1")
    pool.quantization.scale = np.array([0.0], np.float32)
    pool.name = b"pool\x1b]0;owned\x07\nline two"
    path = tmp_path / "m.tflite"
    path.write_bytes(pack(m))
    result = run("summary", path)
    _one_line_error(result, "pool\\x1b]0;owned\\x07")
    assert "\x1b" not in result.output


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_or_inf_weights_are_one_line_without_numpy_warnings(tmp_path, value):
    sd = torch.load(os.path.join(PT, "lenet5_state_dict.pt"))
    key = next(iter(sd))
    sd[key] = sd[key].clone()
    sd[key].view(-1)[3] = value
    torch.save(sd, tmp_path / "bad.pt")
    result = run("convert", tmp_path / "bad.pt", "--arch", "lenet5", "--calib",
                 os.path.join(data_dir(), "calib"), "-o", tmp_path / "out.tflite")
    _one_line_error(result, "features.0: weight holds 1 NaN or infinite values",
                    "flat index 3")
    assert "Warning" not in result.output


def test_unreadable_calibration_files_are_named(tmp_path):
    calib = tmp_path / "calib"
    calib.mkdir()
    for name, data in (("a.png", b"xx"), ("b.jpg", b"\xff\xd8\xff"), ("c.png", b""),
                       ("d.png", b"\x89PNG"), ("e\x1b.png", b"1")):
        (calib / name).write_bytes(data)
    result = run("convert", os.path.join(PT, "lenet5_state_dict.pt"), "--arch", "lenet5",
                 "--calib", calib, "--mean", "0", "--std", "1", "-o", tmp_path / "out.tflite")
    _one_line_error(result, "all 5 files were unreadable: a.png (cannot decode", "b.jpg (",
                    "c.png (", "and 2 more")


def test_batch_four_input_is_one_line_in_infer_and_verify(tmp_path):
    m = model_t()
    tensor(m, "image").shape = np.array([4, 6, 6, 1], np.int32)
    path = tmp_path / "batch4.tflite"
    path.write_bytes(pack(m))
    for args in (("infer", path, "x.png"), ("verify", path)):
        _one_line_error(run(*args), "(4, 6, 6, 1)", "batch 1")


@pytest.mark.parametrize("pre,text", [
    (ir.Preprocess(height=9, width=6, color="L"), "9x6 L"),
    (ir.Preprocess(height=6, width=6, color="RGB"), "6x6 RGB"),
])
def test_preprocessing_that_disagrees_with_the_input_is_one_line(tmp_path, pre, text):
    path = tmp_path / "m.tflite"
    path.write_bytes(to_flatbuffer(tiny_graph().replace(preprocess=pre)))
    image = os.path.join(data_dir(), "samples", _digit())
    for args in (("infer", path, image), ("verify", path, "--images", image)):
        _one_line_error(run(*args), text, "(1, 6, 6, 1)", "metadata is corrupt")


@pytest.mark.parametrize("shape,text", [
    ([1, 2**31 - 1], "[1, 2147483647] does not resolve"),
    ([2, -1, -1], "does not resolve"),
    ([-1, 3], "does not resolve"),
])
def test_reshape_shape_input_must_give_the_declared_output(tmp_path, shape, text):
    m = model_t()
    t = tensor(m, "flatten/shape")
    t.shape = np.array([len(shape)], np.int32)
    m.buffers[t.buffer].data = np.frombuffer(np.array(shape, np.int32).tobytes(), np.uint8).copy()
    path = tmp_path / "m.tflite"
    path.write_bytes(pack(m))
    _one_line_error(run("infer", path, "x.png"), "operator 2 (RESHAPE)", text)
