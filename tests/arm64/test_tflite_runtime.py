"""LiteRT's fallback import, tflite-runtime 2.14 (numpy < 2): verify picks the rounding its
reference kernels use. Collected only in the arm64 stage's Debian-numpy venv
(EDGECNN_EXPECT_TFLITE_RUNTIME=1), the one place tflite-runtime is installed."""

import os
import sys

import pytest


@pytest.fixture
def tflite_runtime_only(monkeypatch):
    """LiteRT as the fallback import sees it: ai_edge_litert.interpreter unimportable, so
    edgecnn.litert takes tflite_runtime's interpreter (the schema bindings still come from
    ai_edge_litert.schema_py_generated: tflite-runtime ships none)."""
    import tflite_runtime.interpreter  # noqa: F401  (installed in this venv by run.sh)
    try:
        import ai_edge_litert
        monkeypatch.delattr(ai_edge_litert, "interpreter", raising=False)
    except ImportError:
        pass
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    from edgecnn import litert
    module = litert._interpreter_module()
    assert module.__name__ == "tflite_runtime.interpreter"
    return module


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    from edgecnn.convert import convert
    from edgecnn.demo import data_dir
    path = str(tmp_path_factory.mktemp("lenet") / "lenet5.tflite")
    convert(os.path.join(data_dir(), "lenet5.pt"), path, arch="lenet5",
            calib=[os.path.join(data_dir(), "samples")], mean=(0.5,), std=(0.5,))
    return path, os.path.join(data_dir(), "samples")


def test_verify_against_tflite_runtime_reference(tflite_runtime_only, lenet):
    """tflite-runtime 2.14's BUILTIN_REF rescales every op with the gemmlowp double rounding
    (its FULLY_CONNECTED predates the f64 rescale of ai-edge-litert 2.x), so ``double`` is
    the policy that matches it on every tensor."""
    from edgecnn.verify import verify
    path, images = lenet
    report = verify(path, [images], against="litert-ref")  # default rounding: resolved
    assert report.rounding == "double" and report.litert.startswith("tflite-runtime 2.14")
    assert [r.name for r in report.rows if r.max_diff != 0] == []
    assert report.ok and report.inputs == 30
