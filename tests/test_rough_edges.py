"""What a new user hit (issue 11's rough edges), one test each: file modes, the Python API,
preprocessing for third-party files, float models, --json everywhere, input checks, README."""

import importlib
import inspect
import json
import os
import pathlib

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import edgecnn
from edgecnn.cli import main
from edgecnn.convert import import_float_graph
from edgecnn.demo import data_dir, heldout_set
from edgecnn.tflite.writer import write_tflite
from eval_fixture import LENET_PT, make_lenet

HERE = os.path.dirname(__file__)
TF_MODEL = os.path.join(HERE, "fixtures", "tflite", "tf_lenet5_float_io.tflite")
SAMPLE = os.path.join(data_dir(), "samples", "digit_7_0014.png")
TF_FLAGS = ["--mean", "0.5", "--std", "0.5"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    return make_lenet(str(tmp_path_factory.mktemp("rough")))


# 1. output files -------------------------------------------------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_outputs_get_0666_masked_by_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        r = run("convert", LENET_PT, "--arch", "lenet5", "--calib",
                os.path.join(data_dir(), "calib"), "-o", tmp_path / "m.tflite")
        assert r.exit_code == 0, r.output
        s = run("set-preprocess", TF_MODEL, "-o", tmp_path / "tf.tflite", *TF_FLAGS)
        assert s.exit_code == 0, s.output
    finally:
        os.umask(old)
    for name in ("m.tflite", "m.calib.json", "tf.tflite"):
        assert oct(os.stat(tmp_path / name).st_mode & 0o777) == oct(0o666 & ~umask), name


# 2. the Python API -----------------------------------------------------------------------------

def test_predict_takes_paths_pil_numpy_and_batches(lenet):
    model = edgecnn.load(lenet)
    ref = model.predict(SAMPLE, top_k=3)
    pixels = np.asarray(Image.open(SAMPLE))
    assert ref[0].label == "7"
    for form in (pathlib.Path(SAMPLE), Image.open(SAMPLE), pixels, pixels[:, :, None],
                 pixels.astype(np.float32) / 255, np.repeat(pixels[:, :, None], 3, axis=2)):
        assert model.predict(form, top_k=3) == ref, type(form)
    images, _ = heldout_set()
    batch = model.predict(images[:4, :, :, None], top_k=1)  # N x H x W x C: a list of N
    assert isinstance(batch, list) and len(batch) == 4
    assert model.predict(list(images[:4]), top_k=1) == batch
    with pytest.raises(edgecnn.EdgecnnError, match="a batch is NxHxWxC or a list"):
        model.predict(images[:4])  # N x H x W is ambiguous with one H x W x C image
    assert model.predict([SAMPLE, pixels], top_k=3) == [ref, ref]
    with pytest.raises(edgecnn.EdgecnnError, match=r"float pixels must lie in \[0, 1\]"):
        model.predict(pixels.astype(np.float32))
    with pytest.raises(edgecnn.EdgecnnError, match="top-k 0"):
        model.predict(SAMPLE, top_k=0)


def test_public_api_is_listed_and_documented():
    names = dir(edgecnn)
    for name in ("convert", "load", "evaluate", "set_preprocess", "Model", "Prediction",
                 "Preprocess", "EdgecnnError", "EvalReport", "ConvertResult", "__version__"):
        assert name in names and name in edgecnn.__all__
    assert inspect.isfunction(edgecnn.convert)
    assert "calib" in inspect.signature(edgecnn.convert).parameters
    module = importlib.import_module("edgecnn.convert")  # the module of the same name
    assert inspect.ismodule(module) and inspect.isfunction(edgecnn.convert)
    for name in edgecnn.__all__:
        obj = getattr(edgecnn, name)
        if inspect.isclass(obj):  # its own docstring, not the signature a dataclass makes up
            doc = obj.__dict__.get("__doc__") or ""
            assert doc and not doc.startswith(f"{name}("), f"edgecnn.{name} has no docstring"
            for attr, member in inspect.getmembers(obj):
                if not attr.startswith("_") and (callable(member) or isinstance(member, property)):
                    assert inspect.getdoc(member), f"edgecnn.{name}.{attr} has no docstring"
        elif callable(obj):
            assert inspect.getdoc(obj), f"edgecnn.{name} has no docstring"


# 3. preprocessing for files that store none ----------------------------------------------------

def test_infer_and_verify_take_preprocessing_flags_for_a_tf_file(tmp_path):
    bare = run("infer", TF_MODEL, SAMPLE)
    assert bare.exit_code == 2 and "--input-size/--color/--resize/--mean/--std/--invert" in bare.stderr
    flagged = run("infer", TF_MODEL, SAMPLE, *TF_FLAGS, "--json")
    assert flagged.exit_code == 0, flagged.output
    v = run("verify", TF_MODEL, "--images", os.path.join(data_dir(), "samples"), *TF_FLAGS, "--json")
    assert v.exit_code == 0, v.output
    assert json.loads(v.stdout)["ok"] and json.loads(v.stdout)["inputs"] == 30
    wrong = run("infer", TF_MODEL, SAMPLE, "--input-size", "28")
    assert wrong.exit_code == 2 and "the model takes 32x32" in wrong.stderr

    out = tmp_path / "with_pre.tflite"
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"digit{d}\n" for d in range(10)))
    before = open(TF_MODEL, "rb").read()
    s = run("set-preprocess", TF_MODEL, "-o", out, *TF_FLAGS, "--labels", labels)
    assert s.exit_code == 0, s.output
    assert open(TF_MODEL, "rb").read() == before  # a new file; the input is untouched
    stored = run("infer", out, SAMPLE, "--json")
    assert stored.exit_code == 0, stored.output
    ours, theirs = json.loads(stored.stdout)[0]["top"], json.loads(flagged.stdout)[0]["top"]
    assert [t["index"] for t in ours] == [t["index"] for t in theirs]
    assert [t["score"] for t in ours] == [t["score"] for t in theirs]
    assert ours[0]["label"].startswith("digit")
    again = run("set-preprocess", TF_MODEL, "-o", out, *TF_FLAGS)
    assert again.exit_code == 2 and "exists; pass --force" in again.stderr
    assert run("set-preprocess", TF_MODEL, "-o", out, "--mean", "0.4", "--std", "0.5",
               "--force").exit_code == 0
    assert edgecnn.load(str(out)).preprocess.mean == (0.4,)
    assert run("verify", out).exit_code == 0  # still bit-exact against LiteRT


# 4. float models -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def float_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("float") / "lenet_float.tflite"
    write_tflite(import_float_graph(LENET_PT, "lenet5"), path)
    return path


@pytest.mark.parametrize("command", [["infer", "{m}", SAMPLE], ["verify", "{m}"],
                                     ["bench", "{m}", "--runs", "1"],
                                     ["export-c", "{m}", "-o", "{tmp}/fw"],
                                     ["evaluate", "{m}", "{tmp}"]])
def test_a_float_model_is_told_to_run_convert_first(float_model, tmp_path, command):
    args = [a.format(m=float_model, tmp=tmp_path) for a in command]
    r = run(*args)
    assert r.exit_code == 2
    assert r.stderr.strip() == (f"error: {float_model}: this is a float model: run `edgecnn "
                                "convert lenet_float.tflite --calib DIR` first")


# 5. --json on every command, and on errors -----------------------------------------------------

def test_every_command_has_json():
    for name, command in main.commands.items():
        assert "--json" in [o for p in command.params for o in getattr(p, "opts", [])], name


def test_errors_with_json_carry_a_json_object(lenet, tmp_path):
    missing = run("infer", tmp_path / "nope.tflite", SAMPLE, "--json")
    assert missing.exit_code == 2
    doc = json.loads(missing.stdout)
    assert doc["exit_code"] == 2 and "nope.tflite" in doc["error"] and doc["command"] == "infer"
    assert missing.stderr.startswith("error: ") and missing.stderr.count("\n") == 1
    usage = run("infer", lenet, SAMPLE, "--top-k", "0", "--json")
    assert usage.exit_code == 2 and "--top-k" in json.loads(usage.stdout)["error"]
    plain = run("infer", tmp_path / "nope.tflite", SAMPLE)
    assert plain.exit_code == 2 and plain.stdout == ""


def test_infer_json_lists_unreadable_images(lenet, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_text("not an image")
    r = run("infer", lenet, SAMPLE, bad, "--json")
    assert r.exit_code == 2
    out = json.loads(r.stdout)
    assert out[0]["image"] == SAMPLE and out[0]["top"]
    assert out[1]["image"] == str(bad) and "cannot decode the image" in out[1]["error"]


def test_convert_and_export_c_json(lenet, tmp_path):
    e = run("export-c", lenet, "-o", tmp_path / "fw", "--json")
    assert e.exit_code == 0, e.output
    doc = json.loads(e.stdout)
    assert doc["target"] == "host" and "model.c" in doc["files"] and doc["arena_bytes"] > 0
    c = run("convert", LENET_PT, "--arch", "lenet5", "--calib", os.path.join(data_dir(), "calib"),
            "-o", tmp_path / "c.tflite", "--json")
    assert c.exit_code == 0, c.output
    assert json.loads(c.stdout)["preprocess"]["height"] == 32


# 6. input checks -------------------------------------------------------------------------------

def test_labels_must_match_the_class_count(tmp_path):
    labels = tmp_path / "two.txt"
    labels.write_text("cat\ndog\n")
    r = run("convert", LENET_PT, "--arch", "lenet5", "--calib", os.path.join(data_dir(), "calib"),
            "--labels", labels, "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2 and not (tmp_path / "m.tflite").exists()
    assert "--labels gives 2 labels but the model has 10 classes" in r.stderr
    s = run("set-preprocess", TF_MODEL, "-o", tmp_path / "t.tflite", *TF_FLAGS, "--labels", labels)
    assert s.exit_code == 2 and "2 labels but the model has 10 classes" in s.stderr


def test_top_k_zero_is_an_error(lenet):
    r = run("infer", lenet, SAMPLE, "--top-k", "0")
    assert r.exit_code == 2 and "--top-k" in r.stderr
    with pytest.raises(edgecnn.EdgecnnError, match="top-k 0"):
        edgecnn.load(lenet).top_k(np.ones(10), 0)


def _save_size_free_net(path):
    """A pickled nn.Sequential whose AdaptiveAvgPool2d fixes no input size."""
    import torch
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(8, 10))
    torch.save(net, path)


def test_convert_says_which_preprocessing_it_chose(tmp_path):
    """A CIFAR-sized module with AdaptiveAvgPool2d: edgecnn picks 224 and ImageNet's recipe
    itself, and says so, naming the flags."""
    _save_size_free_net(tmp_path / "cifar.pt")
    photos = os.path.join(os.path.dirname(edgecnn.__file__), "data", "photos")
    r = run("convert", tmp_path / "cifar.pt", "--calib", photos, "-o", tmp_path / "c.tflite")
    assert r.exit_code == 0, r.output
    warned = [ln for ln in r.stderr.splitlines() if ln.startswith("warning: ")]
    assert any("does not fix its input size" in w and "--input-size" in w for w in warned)
    assert any("ImageNet's mean" in w and "--mean/--std" in w for w in warned)
    assert any("center-cropping 224x224" in w and "--resize 0" in w for w in warned)
    told = run("convert", tmp_path / "cifar.pt", "--calib", photos, "-o", tmp_path / "d.tflite",
               "--input-size", "32", "--mean", "0.5", "--std", "0.5")
    assert told.exit_code == 0, told.output
    assert "--input-size" not in told.stderr and "ImageNet" not in told.stderr
    assert "--resize" not in told.stderr and "--mean/--std" not in told.stderr
    # away from 224 the default is unnormalized [0, 1] pixels: said as well
    plain = run("convert", tmp_path / "cifar.pt", "--calib", photos, "-o", tmp_path / "e.tflite",
                "--input-size", "32")
    assert plain.exit_code == 0, plain.output
    assert "no --mean/--std given: the model gets pixels scaled to [0, 1]" in plain.stderr


# 7. README -------------------------------------------------------------------------------------

def test_readme_no_longer_says_tflm_is_not_wired():
    readme = open(os.path.join(HERE, "..", "README.md"), encoding="utf-8").read()
    assert "--against tflm" in readme and "is not wired" not in readme


def test_convert_refuses_a_model_litert_would_not_load(tmp_path):
    """Outputs that calibrate to almost nothing (an untrained network's activations vanish:
    torchvision's MobileNetV2 at init reaches 1e-7) give a scale so small that the fused
    ReLU6 bound leaves int32; LiteRT would refuse the file, so convert refuses to write it."""
    import torch
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU6(), torch.nn.Flatten(),
                              torch.nn.Linear(8 * 30 * 30, 10))
    with torch.no_grad():
        net[0].weight.mul_(1e-8)
        net[0].bias.zero_()
        net[3].bias.zero_()
    torch.save(net, tmp_path / "dead.pt")
    photos = os.path.join(os.path.dirname(edgecnn.__file__), "data", "photos")
    r = run("convert", tmp_path / "dead.pt", "--calib", photos, "--input-size", "32",
            "--mean", "0.5", "--std", "0.5", "-o", tmp_path / "dead.tflite")
    assert r.exit_code != 0 and not (tmp_path / "dead.tflite").exists()
    line = r.stderr.strip().splitlines()[-1]
    assert "would not load in LiteRT: layer '0': output scale" in line and "RELU6" in line, line


def test_evaluate_runs_the_float_source_at_the_converted_size(tmp_path):
    """A source that does not fix its size (AdaptiveAvgPool2d) converted at 32x32: evaluate
    --float runs it at 32 too (it once ran it at 224, and matched no tensor per layer)."""
    _save_size_free_net(tmp_path / "any.pt")
    photos = os.path.join(os.path.dirname(edgecnn.__file__), "data", "photos")
    r = run("convert", tmp_path / "any.pt", "--calib", photos, "-o", tmp_path / "m.tflite",
            "--input-size", "32", "--mean", "0.5", "--std", "0.5")
    assert r.exit_code == 0, r.output
    r = run("evaluate", tmp_path / "m.tflite", photos, "--float", tmp_path / "any.pt",
            "--per-layer", "--json", "--workers", "1")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["agreement"] == 1.0 and not report["unmatched_tensors"], report
    assert len(report["layers"]) == 5  # input, conv+ReLU, mean, flatten, dense
