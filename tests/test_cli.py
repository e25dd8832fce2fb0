"""The command line through click's test runner: outputs, exit codes, one-line errors."""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgecnn.cli import main

PT = os.path.join(os.path.dirname(__file__), "fixtures", "pt")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with calibration digits-like images and a converted LeNet-5."""
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(7)
    os.makedirs(d / "imgs")
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8), "L").save(d / "imgs" / f"{i}.png")
    (d / "labels.txt").write_text("\n".join(f"class{i}" for i in range(10)))
    r = CliRunner().invoke(main, ["convert", os.path.join(PT, "lenet5_state_dict.pt"), "--arch",
                                  "lenet5", "--calib", str(d / "imgs"), "--mean", "0.5", "--std",
                                  "0.5", "--labels", str(d / "labels.txt"), "-o",
                                  str(d / "lenet.tflite")])
    assert r.exit_code == 0, r.output
    return d


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_convert_reports_what_it_wrote(workdir):
    assert (workdir / "lenet.tflite").stat().st_size > 60000


def test_convert_refuses_to_overwrite_without_force(workdir):
    r = run("convert", os.path.join(PT, "lenet5_module.pt"), "--calib", workdir / "imgs", "-o",
            workdir / "lenet.tflite")
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [f"error: {workdir / 'lenet.tflite'} exists; pass "
                                             "--force to overwrite it"]


def test_infer_json_gives_top_k_with_labels(workdir):
    r = run("infer", workdir / "lenet.tflite", workdir / "imgs", "--top-k", "3", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert len(out) == 12 and all(len(o["top"]) == 3 for o in out)
    top = out[0]["top"]
    assert top[0]["label"].startswith("class") and top[0]["score"] >= top[1]["score"]
    assert abs(sum(t["score"] for t in top)) <= 1.0 + 1e-6


def test_infer_backends_agree(workdir):
    outs = [json.loads(run("infer", workdir / "lenet.tflite", workdir / "imgs", "--json",
                           "--backend", b).output) for b in ("cython", "reference")]
    assert outs[0] == outs[1]


def test_infer_reports_bad_images_and_goes_on(workdir, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_text("not an image")
    r = run("infer", workdir / "lenet.tflite", workdir / "imgs" / "0.png", bad)
    assert r.exit_code == 2
    assert "0.png:" in r.output and "broken.png: cannot decode the image" in r.output


def test_verify_is_bit_exact_and_json(workdir):
    r = run("verify", workdir / "lenet.tflite", "--images", workdir / "imgs", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["ok"] and report["inputs"] == 12 and len(report["tensors"]) == 9
    assert all(t["max_diff"] == 0 and t["exact_share"] == 1.0 for t in report["tensors"])


def test_verify_against_xnnpack_reports_top1(workdir):
    r = run("verify", workdir / "lenet.tflite", "--against", "litert", "--count", "5")
    assert r.exit_code == 0, r.output
    assert "top-1 agreement" in r.output and "REPORT: the outputs differ by up to" in r.output
    # --rounding fp32 is XNNPACK's rescale: then it is a check, and bit-exact
    r = run("verify", workdir / "lenet.tflite", "--against", "litert", "--rounding", "fp32",
            "--count", "5")
    assert r.exit_code == 0 and "PASS: contract is bit-exact" in r.output, r.output


def test_summary_of_the_tflite_and_of_the_pt(workdir):
    r = run("summary", workdir / "lenet.tflite")
    assert r.exit_code == 0 and "61706" in r.output.replace(",", "")
    r = run("summary", os.path.join(PT, "lenet5_state_dict.pt"), "--arch", "lenet5", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["totals"]["params"] == 61706


@pytest.mark.parametrize("args, message", [
    (["infer", "missing.tflite", "x.png"], "missing.tflite: no such file"),
    (["summary", "missing.pt", "--arch", "lenet5"], "missing.pt: no such file"),
    (["convert", os.path.join(PT, "lenet5_state_dict.pt"), "--arch", "vgg"], "unknown --arch"),
])
def test_errors_are_one_line_with_exit_2(args, message):
    r = run(*args)
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in r.output


def test_not_a_model_is_a_one_line_error(tmp_path):
    p = tmp_path / "notes.tflite"
    p.write_text("hello")
    r = run("infer", p, p)
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1


def test_state_dict_without_arch_is_a_one_line_error(workdir, tmp_path):
    r = run("convert", os.path.join(PT, "lenet5_state_dict.pt"), "--calib", workdir / "imgs",
            "-o", tmp_path / "x.tflite")
    assert r.exit_code == 2 and "pass --arch" in r.output
    assert not (tmp_path / "x.tflite").exists()


def test_convert_onnx_then_verify(workdir, tmp_path):
    onnx_file = os.path.join(os.path.dirname(__file__), "fixtures", "onnx", "lenet5.onnx")
    out = tmp_path / "onnx.tflite"
    r = run("convert", onnx_file, "--calib", workdir / "imgs", "-o", out)
    assert r.exit_code == 0, r.output
    assert run("verify", out).exit_code == 0
    r = run("convert", onnx_file, "--arch", "lenet5", "--calib", workdir / "imgs", "-o",
            tmp_path / "other.tflite")
    assert r.exit_code == 2 and "drop --arch" in r.output


def test_export_c_writes_a_project_and_refuses_to_overwrite(workdir, tmp_path):
    r = run("export-c", workdir / "lenet.tflite", "-o", tmp_path / "fw", "--target", "cortex-m4")
    assert r.exit_code == 0, r.output
    assert "arena plan" in r.output and (tmp_path / "fw" / "Makefile").exists()
    again = run("export-c", workdir / "lenet.tflite", "-o", tmp_path / "fw")
    assert again.exit_code == 2 and "--force" in again.output


def test_bench_json_has_the_ratio_per_thread_count(workdir):
    r = run("bench", workdir / "lenet.tflite", "--threads", "1", "--runs", "3", "--ref-runs", "1",
            "--json")
    assert r.exit_code == 0, r.output
    row = json.loads(r.output)["threads"]["1"]
    assert row["edgecnn_ms"] > 0 and row["litert_ms"] > 0
    assert row["ratio"] == pytest.approx(row["edgecnn_ms"] / row["litert_ms"])


def test_max_memory_ceiling_refuses_before_loading(workdir):
    r = run("infer", workdir / "lenet.tflite", workdir / "imgs" / "0.png", "--max-memory", "10k")
    assert r.exit_code == 2 and "memory ceiling of 10240 bytes" in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert run("summary", workdir / "lenet.tflite", "--max-memory", "1G").exit_code == 0
    r = run("verify", workdir / "lenet.tflite", "--max-memory", "lots")
    assert r.exit_code == 2 and "give a size such as 4G" in r.output


@pytest.mark.parametrize("name", ["tf_lenet5_float_io", "tf_pad_tanh", "tf_small_same_avg"])
def test_verify_against_tflite_micro_is_bit_exact_with_double_rounding(name):
    path = os.path.join(os.path.dirname(__file__), "fixtures", "tflite", name + ".tflite")
    r = run("verify", path, "--against", "tflm", "--count", "5", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["rounding"] == "double" and report["litert"].startswith("tflite-micro")
    assert report["ok"] and report["tensors"][0]["exact_share"] == 1.0

