"""Which kernel path this CPU runs, and LiteRT's tflite-runtime fallback.

The arm64 CI stage (.ci/arm64/run.sh) runs these inside QEMU as a Cortex-A72 (Raspberry Pi 4,
no dot product) and a Cortex-A76 (Pi 5, armv8.2 ``sdot``) and sets EDGECNN_EXPECT_ISA to the
path each must take: "neon" and "neon-sdot". Elsewhere the path is only checked to be a known
one. No torch here: these run on a Pi.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

import pytest

from edgecnn.backends import cython as cython_backend

KNOWN_ISAS = ("generic", "avx2", "avx512vnni", "neon", "neon-sdot")
EXPECTED = os.environ.get("EDGECNN_EXPECT_ISA", "")
HWCAP_ASIMDDP = 1 << 20  # arm64 AT_HWCAP bit: SDOT/UDOT (armv8.2 dot product)


def _arm64_linux():
    return sys.platform.startswith("linux") and platform.machine() == "aarch64"


def test_kernel_isa_is_the_expected_one():
    kernel_isa = getattr(cython_backend, "kernel_isa", None)
    if kernel_isa is None:
        pytest.skip("edgecnn.backends.cython.kernel_isa() is not in this build yet")
    isa = kernel_isa()
    if EXPECTED:
        assert isa == EXPECTED, f"kernels chose {isa!r}, this CPU should give {EXPECTED!r}"
    else:
        assert isa in KNOWN_ISAS


@pytest.mark.skipif(not _arm64_linux(), reason="arm64 Linux only")
def test_cpu_reports_dot_product_exactly_when_expected():
    """The emulated CPU is the one asked for: the A76 advertises sdot, the A72 does not."""
    if not EXPECTED:
        pytest.skip("EDGECNN_EXPECT_ISA not set (set by .ci/arm64/run.sh)")
    hwcap = ctypes.CDLL(None).getauxval(16)  # AT_HWCAP
    assert bool(hwcap & HWCAP_ASIMDDP) == (EXPECTED == "neon-sdot"), hex(hwcap)


@pytest.fixture
def tflite_runtime_only(monkeypatch):
    """LiteRT as the fallback import sees it: ai_edge_litert.interpreter unimportable, so
    edgecnn.litert takes tflite_runtime's interpreter (the schema bindings still come from
    ai_edge_litert.schema_py_generated: tflite-runtime ships none)."""
    pytest.importorskip("tflite_runtime.interpreter")
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
    report = verify(path, [images], against="litert-ref", rounding="double")
    assert [r.name for r in report.rows if r.max_diff != 0] == []
    assert report.ok and report.inputs == 30
