"""Every path of the firmware kernels against the NumPy spec, bit for bit: seeded random conv,
fully connected and pooling cases, packed as export-c packs them (edgecnn/export_c/kernels.py),
run by one small C program (tests/firmware_kernels.c) built for the host (plain C, with
AddressSanitizer and UBSan) and for Cortex-M cores under QEMU: M3 (plain C), M4, M7 and M33 (the
DSP path), M55 (Helium). Guard bytes after every scratch and output buffer catch a kernel that
writes past what export-c plans for it.
"""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from edgecnn.export_c import TARGETS, stubs_dir
from edgecnn.export_c.exact_f64 import POLICY_F64_INT
from edgecnn.export_c.kernels import compact_requant, conv_scratch, exact_requant, fold_bias
from edgecnn.export_c.targets import QEMU_FLAGS
from edgecnn.reference import conv as conv_ref
from edgecnn.reference import fully_connected as fc_ref
from edgecnn.reference import params as P
from edgecnn.reference import pool as pool_ref
from edgecnn.reference.params import (ConvParams, FCParams, PoolParams, activation_range,
                                      make_requant)

HERE = os.path.dirname(os.path.abspath(__file__))
KERNELS = ("ec_conv.c", "ec_fully_connected.c", "ec_pool.c")
POLICIES = ("double", "f64", "single", "fp32")
ACTIVATIONS = ("none", "relu", "relu6")
CORES = ("cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")


class CaseFile:
    """The int32 stream tests/firmware_kernels.c reads (its header comment is the format)."""

    def __init__(self):
        self.words = []
        self.count = 0
        self.policies = set()  # the policy codes the cases carry

    def ints(self, *values):
        self.words.extend(int(v) for v in values)

    def array(self, a):
        raw = np.ascontiguousarray(a).tobytes()
        self.ints(len(raw))
        raw += b"\0" * (-len(raw) % 4)
        self.words.extend(np.frombuffer(raw, "<i4").tolist())

    def requant(self, rq, per_channel):
        self.policies.add(rq.policy)
        n = np.asarray(rq.multiplier).size
        self.ints(rq.policy, rq.output_offset, rq.act_min, rq.act_max, per_channel, n)
        self.ints(*np.asarray(rq.multiplier, np.int64), *np.asarray(rq.shift, np.int64))
        if (len(self.words) + 2) % 2:  # doubles 8-aligned from the file's start (2-word header)
            self.ints(0)
        scales = np.broadcast_to(np.asarray(rq.real_scale, "<f8"), (n,))
        self.words.extend(np.frombuffer(np.ascontiguousarray(scales).tobytes(), "<i4").tolist())

    def bytes(self) -> bytes:
        return np.array([0x54434B45, self.count] + self.words, "<i4").tobytes()


def _weights(rng, shape, spread):
    return rng.integers(-spread, spread + 1, size=shape).astype(np.int8)


def _multiplier(rng, i):
    """Requant multipliers below 0.5 (the shift-only fast form) and a few at or above it."""
    return float(rng.uniform(0.6, 3.0)) if i % 7 == 3 else float(rng.uniform(0.002, 0.45))


def conv_case(rng, i, cases: CaseFile):
    lenet = {0: (32, 32, 1, 6, 5), 1: (14, 14, 6, 16, 5)}.get(i)
    if lenet:
        h, w, cin, cout, k = lenet
        kh = kw = k
        sh = sw = dh = dw = 1
        pt = pl = 0
    else:
        h, w = (int(v) for v in rng.integers(1, 11, size=2))
        cin, cout = (int(v) for v in rng.integers(1, 10, size=2))
        kh, kw = (int(v) for v in rng.integers(1, 6, size=2))
        sh, sw, dh, dw = (int(v) for v in rng.integers(1, 3, size=4))
        pt, pl = (int(v) for v in rng.integers(0, 3, size=2))
    oh = (h + 2 * pt - (kh - 1) * dh - 1) // sh + 1
    ow = (w + 2 * pl - (kw - 1) * dw - 1) // sw + 1
    if oh < 1 or ow < 1:
        return None
    ties = i % 3 == 2
    spread = 4 if ties else 127
    policy, activation = POLICIES[i % 4], ACTIVATIONS[i % 3]
    zp_in = int(rng.integers(-128, 128))
    x = np.clip(zp_in + rng.integers(-spread, spread + 1, size=(h, w, cin)), -128, 127)
    x = x.astype(np.int8)
    wt = _weights(rng, (cout, kh, kw, cin), spread)
    bias = (rng.integers(-20000, 20000, size=cout) // (300 if ties else 1)).astype(np.int32)
    s_in = float(rng.uniform(0.005, 0.1))
    s_w = rng.uniform(0.002, 0.02, size=cout if i % 2 else 1).astype(np.float32)
    m = _multiplier(rng, i) if ties else 40 / (5350 * np.sqrt(kh * kw * cin))
    rq = make_requant(s_in, s_w, float(s_in * s_w.mean() / m), int(rng.integers(-100, 100)),
                      activation, "conv", policy)
    p = ConvParams(sh, sw, pt, pl, dh, dw, -zp_in)
    expected = np.empty((oh, ow, cout), np.int8)
    conv_ref.conv2d_s8(x, wt, bias, p, rq, expected)
    packed, per_channel = compact_requant(exact_requant(rq, wt, bias, p.input_offset))
    cases.ints(1, h, w, cin, oh, ow, cout, kh, kw, sh, sw, pt, pl, dh, dw, p.input_offset)
    cases.requant(packed, per_channel)
    cases.array(np.concatenate([wt.ravel(), np.zeros(-(kh * kw * cin) % 16, np.int8)]))
    cases.array(fold_bias(wt, bias, p.input_offset, "case"))
    cases.ints(conv_scratch((wt,)))
    cases.array(x)
    return expected


def fc_case(rng, i, cases: CaseFile):
    n_in = 400 if i == 0 else int(rng.integers(1, 80))
    n_out = 120 if i == 0 else int(rng.integers(1, 12))
    ties = i % 3 == 2
    spread = 4 if ties else 127
    policy, activation = POLICIES[i % 4], ACTIVATIONS[i % 3]
    zp_in = int(rng.integers(-128, 128))
    x = np.clip(zp_in + rng.integers(-spread, spread + 1, size=n_in), -128, 127).astype(np.int8)
    wt = _weights(rng, (n_out, n_in), spread)
    bias = (rng.integers(-20000, 20000, size=n_out) // (300 if ties else 1)).astype(np.int32)
    s_in = float(rng.uniform(0.005, 0.1))
    s_w = rng.uniform(0.002, 0.02, size=n_out if i % 2 else 1).astype(np.float32)
    m = _multiplier(rng, i) if ties else 40 / (5350 * np.sqrt(n_in))
    rq = make_requant(s_in, s_w, float(s_in * s_w.mean() / m), int(rng.integers(-100, 100)),
                      activation, "fc", policy)
    p = FCParams(-zp_in)
    expected = np.empty(n_out, np.int8)
    fc_ref.fully_connected_s8(x, wt, bias, p, rq, expected)
    if i % 8 != 5:  # case 5, 13, ...: policy f64 kept in double precision, as without a proof
        rq = exact_requant(rq, wt, bias, p.input_offset)
    packed, per_channel = compact_requant(rq)
    cases.ints(2, n_in, n_out)
    cases.requant(packed, per_channel)
    cases.array(np.concatenate([wt.ravel(), np.zeros(-n_in % 16, np.int8)]))
    cases.array(fold_bias(wt, bias, p.input_offset, "case"))
    cases.array(x)
    return expected


def pool_case(rng, i, cases: CaseFile):
    h, w = (int(v) for v in rng.integers(1, 12, size=2))
    ch = 6 if i == 0 else int(rng.integers(1, 40))
    fh, fw = (int(v) for v in rng.integers(1, 5, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
    pt, pl = int(rng.integers(0, fh)), int(rng.integers(0, fw))
    oh, ow = (h + 2 * pt - fh) // sh + 1, (w + 2 * pl - fw) // sw + 1
    if oh < 1 or ow < 1:
        return None
    lo, hi = activation_range(ACTIVATIONS[i % 3], float(rng.uniform(0.01, 0.1)),
                              int(rng.integers(-128, 100)))
    p = PoolParams(fh, fw, sh, sw, pt, pl, lo, hi)
    x = rng.integers(-128, 128, size=(h, w, ch)).astype(np.int8)
    is_max = i % 2 == 0
    expected = np.empty((oh, ow, ch), np.int8)
    (pool_ref.max_pool_s8 if is_max else pool_ref.avg_pool_s8)(x, p, expected)
    cases.ints(3 if is_max else 4, h, w, ch, oh, ow, ch, fh, fw, sh, sw, pt, pl, lo, hi)
    cases.array(x)
    return expected


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """(folder holding cases.bin, expected outputs, case names)."""
    rng = np.random.default_rng(2024)
    f, expected, names = CaseFile(), [], []
    for kind, make, n in (("conv", conv_case, 48), ("fc", fc_case, 36), ("pool", pool_case, 30)):
        for i in range(n):
            want = make(rng, i, f)
            if want is not None:
                f.count += 1
                expected.append(want.ravel())
                names.append(f"{kind} {i}")
    # every firmware policy, f64-int (export-c's proof) and f64 (no proof) among them
    assert f.policies == {P.POLICY_DOUBLE, P.POLICY_F64, P.POLICY_SINGLE, P.POLICY_FP32,
                          POLICY_F64_INT}, f.policies
    folder = tmp_path_factory.mktemp("kernel_cases")
    (folder / "cases.bin").write_bytes(f.bytes())
    return folder, expected, names


def _build(target: str, out: str):
    stubs = stubs_dir()
    srcs = [os.path.join(HERE, "firmware_kernels.c")] + [str(stubs / k) for k in KERNELS]
    warn = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(stubs)]
    if target == "host":
        cmd = ["cc", *warn, "-O1", "-g", "-fsanitize=address,undefined",
               "-fno-sanitize-recover=all", *srcs, str(stubs / "ec_port_host.c"), "-lm", "-o", out]
    else:
        t = TARGETS[target]
        cmd = ["arm-none-eabi-gcc", *warn, "-O2", f"-mcpu={t.cpu}", "-mthumb",
               *t.float_flags.split(), "-ffunction-sections", "-fdata-sections", *srcs,
               str(stubs / "ec_port_semihost.c"), str(stubs / "startup_cortexm.c"),
               "-L", str(stubs / "boards"), "-T", t.linker_script,
               "-Wl,--defsym=EC_STACK_SIZE=4096", "-Wl,--gc-sections", "--specs=nano.specs",
               "--specs=rdimon.specs", "-nostartfiles", "-lm", "-o", out]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"building the kernel test for {target} failed:\n{r.stderr}"


@pytest.mark.parametrize("target", ("host",) + CORES)
def test_kernel_paths_equal_the_reference(cases, target):
    folder, expected, names = cases
    program = str(folder / f"kernels_{target}")
    _build(target, program)
    argv = ([program, "cases.bin"] if target == "host" else
            ["qemu-system-arm", "-M", TARGETS[target].board, *QEMU_FLAGS.split(), "-kernel",
             program])
    r = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{target}: exit {r.returncode}\n{r.stdout[-300:]}\n{r.stderr}"
    lines = r.stdout.splitlines()
    assert len(lines) == len(expected), f"{target}: {len(lines)} outputs for {len(expected)} cases"
    for line, want, name in zip(lines, expected, names):
        assert "overflow" not in line, f"{target}, {name}: wrote past its planned buffer"
        got = np.frombuffer(bytes.fromhex(line), np.int8)
        bad = np.flatnonzero(got != want)
        assert got.size == want.size and bad.size == 0, (
            f"{target}, {name}: {bad.size} of {want.size} bytes differ; first at {bad[0]}: "
            f"got {got[bad[0]]}, expected {want[bad[0]]}" if bad.size else
            f"{target}, {name}: {got.size} bytes, expected {want.size}")
