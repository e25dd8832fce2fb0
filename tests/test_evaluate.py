"""``edgecnn evaluate``: accuracy, agreement, confusion, per-layer float-vs-int8, every DATA
layout, both float engines, worker processes, and the errors a user can hit."""

import json
import math
import os

import numpy as np
import pytest
from click.testing import CliRunner

import edgecnn
from edgecnn import evaluation
from edgecnn.cli import main
from edgecnn.convert import import_float_graph
from edgecnn.tflite.writer import write_tflite
from eval_fixture import LENET_PT, make_data, make_lenet

TF_INT8 = os.path.join(os.path.dirname(__file__), "fixtures", "tflite", "tf_lenet5_float_io.tflite")


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    d = tmp_path_factory.mktemp("evaluate")
    return {"model": make_lenet(str(d)), "dir": d, **make_data(str(d))}


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_evaluate_folder_prints_float_int8_agreement_and_confusion(lenet):
    r = run("evaluate", lenet["model"], lenet["folder"], "--float", LENET_PT, "--arch", "lenet5",
            "--workers", "1")
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "40 images" in out and "class names matched to the model's labels" in out
    assert "int8   top-1" in out and "float  top-1" in out
    assert "float/int8 top-1 agreement" in out
    matrix = out[out.index("confusion matrix"):].splitlines()[1:12]
    assert matrix[0].split() == [str(d) for d in range(10)]
    counts = np.array([[int(v) for v in row.split()[1:]] for row in matrix[1:]])
    assert counts.shape == (10, 10) and counts.sum() == 40 and (counts.sum(axis=1) == 4).all()
    # progress: a count and an ETA on stderr, never on stdout
    assert "evaluating: 40/40 images (100%)" in r.stderr and "ETA" in r.stderr
    assert "ETA" not in out


def test_json_numbers_and_per_layer_rows(lenet):
    r = run("evaluate", lenet["model"], lenet["npz"], "--float", LENET_PT, "--arch", "lenet5",
            "--per-layer", "--json", "--workers", "1")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["images"] == 40 and doc["int8"]["top1"] >= 0.9 and doc["float"]["top1"] >= 0.9
    assert doc["agreement"] >= 0.95
    assert np.array(doc["confusion"]["matrix"]).sum() == 40
    assert [c["images"] for c in doc["per_class"]] == [4] * 10
    names = [row["tensor"] for row in doc["layers"]]
    graph = edgecnn.load(lenet["model"]).graph
    assert names == [t.name for t in graph.tensors()] and not doc["unmatched_tensors"]
    for row in doc["layers"]:
        assert 25 < row["sqnr_db"] < 80 and 0.999 < row["cosine"] <= 1.0
        assert row["max_abs_err"] > 0 and math.isclose(
            row["rel_l2"], 10 ** (-row["sqnr_db"] / 20), rel_tol=1e-9)
    flags = [(row["tensor"], row["flags"]) for row in doc["layers"] if row["flags"]]
    worst = min(doc["layers"], key=lambda row: row["sqnr_db"])
    assert ("worst SQNR" in worst["flags"]) and any("largest drop" in f for _, f in flags)


def test_folder_csv_and_npz_give_the_same_numbers(lenet):
    reports = [edgecnn.evaluate(lenet["model"], lenet[kind], workers=1).numbers()
               for kind in ("folder", "csv", "npz")]
    for r in reports:
        r.pop("data"), r.pop("data_kind"), r.pop("label_mapping")
    assert reports[0] == reports[1] == reports[2]


def test_worker_processes_give_the_numbers_of_one_process(lenet, monkeypatch):
    one = edgecnn.evaluate(lenet["model"], lenet["folder"], LENET_PT, arch="lenet5",
                           per_layer=True, workers=2)
    assert one.run["parallelism"] == "this process"  # 40 digits: starting workers costs more
    monkeypatch.setattr(evaluation, "POOL_STARTUP", 0.0)
    two = edgecnn.evaluate(lenet["model"], lenet["folder"], LENET_PT, arch="lenet5",
                           per_layer=True, workers=2)
    assert two.run["parallelism"] == "processes" and two.run["workers"] == 2
    assert one.numbers() == two.numbers()


def test_float_tflite_in_litert_matches_fused_tensors_by_name(lenet, tmp_path):
    """The float .tflite keeps conv and ReLU apart; the int8 conv+ReLU writes the ReLU's tensor
    (prepare_float_graph fuses the ReLU into the conv, which takes over its output), so the
    names pair up directly."""
    raw = import_float_graph(LENET_PT, "lenet5")
    float_file = tmp_path / "lenet_float.tflite"
    write_tflite(raw, float_file)
    ours = edgecnn.evaluate(lenet["model"], lenet["npz"], LENET_PT, arch="lenet5",
                            per_layer=True, workers=1)
    litert = edgecnn.evaluate(lenet["model"], lenet["npz"], str(float_file),
                              float_engine="litert", per_layer=True, workers=1)
    by_name = {row.name: row for row in litert.layers}
    assert by_name["features.1"].float_name == "features.1"  # Conv2D+ReLU = the float ReLU
    assert by_name["features.1"].op == "Conv2D+ReLU"
    assert by_name["classifier.1"].float_name == "classifier.1"
    assert by_name["features.2"].float_name == "features.2"
    for row in ours.layers:  # same quantity, float kernels of two engines: within 0.01 dB
        assert abs(by_name[row.name].sqnr_db - row.sqnr_db) < 0.01, row.name
    assert litert.float_top1 == ours.float_top1


def test_names_that_cannot_match_are_listed_with_the_reason(lenet):
    """TensorFlow's converter names tensors its own way: no tensor pairs, each says why."""
    r = run("evaluate", TF_INT8, lenet["folder"], "--mean", "0.5", "--std", "0.5", "--float",
            LENET_PT, "--arch", "lenet5", "--per-layer", "--json", "--workers", "1")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["layers"] == []
    reasons = {u["tensor"]: u["reason"] for u in doc["unmatched_tensors"]}
    assert any("QUANTIZE at the model boundary" in v for v in reasons.values())
    assert any("no float tensor of that name" in v for v in reasons.values())


def test_unreadable_images_are_listed_and_left_out(lenet, tmp_path):
    csv = tmp_path / "with_bad.csv"
    rows = open(lenet["csv"]).read().splitlines()[1:6]
    bad = tmp_path / "broken.png"
    bad.write_text("not a png")
    csv.write_text("\n".join([f"{os.path.join(os.path.dirname(lenet['csv']), r.split(',')[0])},"
                              f"{r.split(',')[1]}" for r in rows] + [f"{bad},3"]) + "\n")
    report = edgecnn.evaluate(lenet["model"], str(csv), workers=1)
    assert report.images == 5 and len(report.skipped) == 1
    assert report.skipped[0][0] == str(bad) and "cannot decode" in report.skipped[0][1]


@pytest.mark.parametrize("case,args,message", [
    ("folder_names_not_labels", "badfolder", "neither among the model's 10 labels"),
    ("per_layer_without_float", "--per-layer", "--per-layer compares with the float model"),
    ("litert_engine_needs_tflite", "--float-engine litert", "--float-engine litert runs"),
])
def test_errors_are_one_line(lenet, tmp_path, case, args, message):
    data = lenet["folder"]
    extra = []
    if args == "badfolder":
        data = tmp_path / "animals"
        (data / "cat").mkdir(parents=True)
        (data / "cat" / "a.png").write_bytes(open(os.path.join(lenet["folder"], "0",
                                                               "000.png"), "rb").read())
    else:
        extra = args.split() + (["--float", LENET_PT, "--arch", "lenet5"]
                                if "litert" in args else [])
    r = run("evaluate", lenet["model"], data, *extra)
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and message in r.stderr, r.output


def test_unlabelled_folder_gives_agreement_and_layers_without_accuracy(lenet, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for d in ("0", "7"):
        for name in sorted(os.listdir(os.path.join(lenet["folder"], d))):
            (flat / f"{d}_{name}").write_bytes(open(os.path.join(lenet["folder"], d, name),
                                                    "rb").read())
    r = run("evaluate", lenet["model"], flat, "--float", LENET_PT, "--arch", "lenet5",
            "--per-layer", "--workers", "1")
    assert r.exit_code == 0, r.output
    assert "unlabelled" in r.stdout and "top-1 agreement" in r.stdout and "SQNR" in r.stdout
    assert "int8   top-1" not in r.stdout and "confusion" not in r.stdout
