"""The AMX-INT8 kernel path (avx512amx, cython_kernels/gemm_amx.h) and the tile edges of every
path: offered exactly where the CPU, the OS and Linux's tile permission allow it (checked here
independently of the kernels' own CPUID/XGETBV code, from /proc/cpuinfo and arch_prctl), and
bit-exact against the NumPy spec on shapes that do not fill tiles, under every rounding
policy, on 1 and 2 threads. Where the machine has no AMX the shape tests still run on every
path it has, and a warning in the test output names what is missing."""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import warnings

import numpy as np
import pytest

import edgecnn.backends.reference as spec
from edgecnn.backends import cython as K
from edgecnn.reference.params import ConvParams, FCParams, make_requant

from test_kernels_fast import POLICIES, assert_same

ISAS = K.supported_isas()
AMX_FLAGS = {"amx_tile", "amx_int8", "avx512f", "avx512bw", "avx512vl", "avx512_vnni"}
ARCH_GET_XCOMP_SUPP, XFEATURE_XTILEDATA = 0x1021, 18


def _linux_grants_tiles() -> bool:
    """Linux 5.16+ lists XTILEDATA among the dynamically enabled state it supports."""
    libc = ctypes.CDLL(None, use_errno=True)
    mask = ctypes.c_uint64(0)
    rc = libc.syscall(158, ARCH_GET_XCOMP_SUPP, ctypes.byref(mask))  # SYS_arch_prctl, x86-64
    return rc == 0 and bool(mask.value >> XFEATURE_XTILEDATA & 1)


def amx_expected() -> tuple[bool, str]:
    if platform.machine() not in ("x86_64", "AMD64") or not os.path.exists("/proc/cpuinfo"):
        return False, f"{platform.machine()} {platform.system()}: no AMX"
    with open("/proc/cpuinfo") as f:
        flags = next((set(line.split(":", 1)[1].split()) for line in f
                      if line.startswith("flags")), set())
    missing = sorted(AMX_FLAGS - flags)
    if missing:
        return False, f"the CPU (or the kernel) does not list {', '.join(missing)}"
    if not _linux_grants_tiles():
        return False, "Linux does not offer XTILEDATA (arch_prctl ARCH_GET_XCOMP_SUPP)"
    return True, "CPU, OS and kernel have AMX-INT8"


def test_amx_offered_exactly_where_cpu_and_os_have_it():
    expected, why = amx_expected()
    offered = "avx512amx" in ISAS
    assert offered == expected, (f"kernels offer avx512amx: {offered}; /proc/cpuinfo and "
                                 f"arch_prctl say {expected} ({why}); kernels say "
                                 f"{K.amx_missing() or 'available'}")
    assert (K.amx_missing() == "") == offered
    if offered:
        assert K.kernel_isa() == "avx512amx"  # the default choice where it exists
    else:
        warnings.warn(f"AMX-INT8 path not tested on this machine: {K.amx_missing()} ({why}); "
                      f"paths tested: {', '.join(ISAS)}")


@pytest.fixture(params=ISAS)
def isa(request):
    K.force_isa(request.param)
    yield request.param
    K.force_isa("auto")


def _rq(rng, cout, s_in, fan_in, policy, op):
    s_w = rng.uniform(0.002, 0.02, size=cout).astype(np.float32)
    return make_requant(s_in, s_w, float(s_in * s_w.mean() * 3 * np.sqrt(fan_in)),
                        int(rng.integers(-128, 128)), "relu" if cout % 2 else "none", op, policy)


# (H, W, Cin, Cout, KH, KW, stride, dilation, pad): M = OH * OW pixels, K = KH * KW * Cin.
TILE_EDGES = {
    "m1_k64_n16": (1, 1, 64, 16, 1, 1, 1, 1, 0),
    "m15_k63_n17": (3, 5, 63, 17, 1, 1, 1, 1, 0),
    "m16_k65_n15": (4, 4, 65, 15, 1, 1, 1, 1, 0),
    "m17_k1_n33": (1, 17, 1, 33, 1, 1, 1, 1, 0),
    "m33_k129_n31": (3, 11, 129, 31, 1, 1, 1, 1, 0),
    "m64_k128_n32": (8, 8, 128, 32, 1, 1, 1, 1, 0),
    "m49_k3x3x7_n65_pad1": (7, 7, 7, 65, 3, 3, 1, 1, 1),
    "m30_k5x5x3_n64_stride2_pad2": (11, 9, 3, 64, 5, 5, 2, 1, 2),
    "m36_k3x3x20_n18_dil2": (10, 10, 20, 18, 3, 3, 1, 2, 1),
    "m55_k11x11x3_n9_stride4": (227, 4, 3, 9, 11, 1, 4, 1, 0),
}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", sorted(TILE_EDGES))
def test_conv_tile_edges(isa, case, threads):
    h, w, cin, cout, kh, kw, s, d, pad = TILE_EDGES[case]
    rng = np.random.default_rng([sorted(TILE_EDGES).index(case), threads])
    oh, ow = (h + 2 * pad - d * (kh - 1) - 1) // s + 1, (w + 2 * pad - d * (kw - 1) - 1) // s + 1
    x = rng.integers(-128, 128, size=(h, w, cin)).astype(np.int8)
    wt = rng.integers(-127, 128, size=(cout, kh, kw, cin)).astype(np.int8)
    bias = rng.integers(-30000, 30000, size=cout).astype(np.int32)
    p = ConvParams(s, s, pad, pad, d, d, int(rng.integers(-127, 129)))
    K.set_num_threads(threads)
    try:
        for policy in POLICIES:
            rq = _rq(rng, cout, 0.03, kh * kw * cin, policy, "conv")
            expected, out = np.empty((oh, ow, cout), np.int8), np.full((oh, ow, cout), 7, np.int8)
            spec.conv2d_s8(x, wt, bias, p, rq, expected)
            K.bind_conv2d_s8(wt, bias, p, rq, x.shape, expected.shape)(x, out)
            assert_same(out, expected, f"{isa} conv {case}, {policy}, {threads} threads")
    finally:
        K.set_num_threads(1)


def test_conv_big_layer_two_threads(isa):
    """AlexNet's conv4 shape (13x13x384 -> 256, 3x3): 6 pixel blocks of 32 (the last of 9
    rows), 54 K tiles, 8 panels, split over 2 threads, extreme inputs and zero points."""
    rng = np.random.default_rng(44)
    x = rng.choice(np.array([-128, 127, 0, -1], np.int8), size=(13, 13, 384))
    wt = rng.choice(np.array([-127, 127, 1], np.int8), size=(256, 3, 3, 384))
    bias = rng.integers(-2**20, 2**20, size=256).astype(np.int32)
    p = ConvParams(1, 1, 1, 1, 1, 1, -127)
    rq = _rq(rng, 256, 0.05, 3456, "litert-ref", "conv")
    expected, out = np.empty((13, 13, 256), np.int8), np.empty((13, 13, 256), np.int8)
    spec.conv2d_s8(x, wt, bias, p, rq, expected)
    K.set_num_threads(2)
    try:
        run = K.bind_conv2d_s8(wt, bias, p, rq, x.shape, out.shape)
        for _ in range(2):
            out[:] = 0
            run(x, out)
            assert_same(out, expected, f"{isa} conv 13x13x384 -> 256, 2 threads")
    finally:
        K.set_num_threads(1)


_LARGE_WEIGHTS = {}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(7, 512, 512, 3), (4, 2048, 1024, 1)],
                         ids=["resnet18-7x7x512-3x3", "pointwise-2048-1024"])
def test_conv_weights_beyond_l2_panels_outer(isa, shape, threads):
    """Packed weights of 2 MiB and more (ResNet-18's last 3x3 convs, ResNet-50-sized pointwise
    ones) run panels outer on AMX, each streamed once, split between threads by pairs of
    panels: the same bytes as the reference, on every path."""
    hw, cin, cout, k = shape
    if shape not in _LARGE_WEIGHTS:
        rng = np.random.default_rng([45, cin])
        x = rng.integers(-128, 128, size=(hw, hw, cin)).astype(np.int8)
        wt = rng.integers(-127, 128, size=(cout, k, k, cin)).astype(np.int8)
        bias = rng.integers(-2**20, 2**20, size=cout).astype(np.int32)
        p = ConvParams(1, 1, k // 2, k // 2, 1, 1, 9)
        rq = _rq(rng, cout, 0.01, k * k * cin, "litert-ref", "conv")
        expected = np.empty((hw, hw, cout), np.int8)
        spec.conv2d_s8(x, wt, bias, p, rq, expected)
        _LARGE_WEIGHTS[shape] = (x, wt, bias, p, rq, expected)
    x, wt, bias, p, rq, expected = _LARGE_WEIGHTS[shape]
    K.set_num_threads(threads)
    try:
        out = np.full_like(expected, 5)
        K.bind_conv2d_s8(wt, bias, p, rq, x.shape, out.shape)(x, out)
    finally:
        K.set_num_threads(1)
    assert_same(out, expected, f"{isa} conv {shape}, {threads} threads")


@pytest.mark.parametrize("n", [1, 63, 64, 65, 255, 257, 4097])
def test_dense_row_stream_edges(isa, n):
    """Rows of every length around the 64- and 256-byte steps of the row stream."""
    rng = np.random.default_rng([n, 3])
    o = 131
    x = rng.integers(-128, 128, size=n).astype(np.int8)
    wt = rng.integers(-127, 128, size=(o, n)).astype(np.int8)
    bias = rng.integers(-30000, 30000, size=o).astype(np.int32)
    for policy in POLICIES:
        rq = _rq(rng, o, 0.04, n, policy, "fc")
        expected, out = np.empty(o, np.int8), np.empty(o, np.int8)
        p = FCParams(-int(rng.integers(-128, 128)))
        spec.fully_connected_s8(x, wt, bias, p, rq, expected)
        K.bind_fully_connected_s8(wt, bias, p, rq)(x, out)
        assert_same(out, expected, f"{isa} dense n={n}, {policy}")


@pytest.mark.parametrize("nb", [1, 9, 17, 33])
def test_batches_equal_image_by_image(isa, nb):
    """run_batch (N images per call; dense layers read each weight once per 16 images) gives
    what the reference gives image by image: row and K tails (o 97, n 200), 2 threads."""
    rng = np.random.default_rng([nb, 5])
    n, o = 200, 97
    x = rng.integers(-128, 128, size=(nb, n)).astype(np.int8)
    wt = rng.integers(-127, 128, size=(o, n)).astype(np.int8)
    bias = rng.integers(-30000, 30000, size=o).astype(np.int32)
    xc = rng.integers(-128, 128, size=(nb, 6, 7, 5)).astype(np.int8)
    wc = rng.integers(-127, 128, size=(40, 3, 3, 5)).astype(np.int8)
    pc = ConvParams(1, 2, 1, 1, 1, 1, 9)
    K.set_num_threads(2)
    try:
        for policy in POLICIES:
            rq, p = _rq(rng, o, 0.04, n, policy, "fc"), FCParams(-int(rng.integers(-128, 128)))
            out, expected = np.empty((nb, o), np.int8), np.empty((nb, o), np.int8)
            for b in range(nb):
                spec.fully_connected_s8(x[b], wt, bias, p, rq, expected[b])
            K.bind_fully_connected_s8(wt, bias, p, rq).run_batch(x, out)
            assert_same(out, expected, f"{isa} dense batch of {nb}, {policy}")
            rq = _rq(rng, 40, 0.04, 45, policy, "conv")
            outc, expc = np.empty((nb, 6, 4, 40), np.int8), np.empty((nb, 6, 4, 40), np.int8)
            for b in range(nb):
                spec.conv2d_s8(xc[b], wc, bias[:40], pc, rq, expc[b])
            K.bind_conv2d_s8(wc, bias[:40], pc, rq, xc.shape[1:], expc.shape[1:]).run_batch(xc, outc)
            assert_same(outc, expc, f"{isa} conv batch of {nb}, {policy}")
    finally:
        K.set_num_threads(1)


def test_isa_selftest_in_c_passes_every_path(tmp_path):
    """benchmarks/isa_selftest.c, compiled with the system's C compiler and run: every path
    this CPU supports (AMX included where offered) bit-exact in plain C."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    exe = tmp_path / "isa_selftest"
    subprocess.run(["cc", "-O1", "-I", os.path.join(root, "cython_kernels"),
                    os.path.join(root, "benchmarks", "isa_selftest.c"), "-o", str(exe),
                    "-lpthread", "-lm"], check=True)
    r = subprocess.run([str(exe)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ISAS:
        assert f"{name:<12} ok" in r.stdout, r.stdout
    assert ("avx512amx not tested here" in r.stdout) == ("avx512amx" not in ISAS)
