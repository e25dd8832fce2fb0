"""The firmware's ADD, MEAN and CONCATENATION C kernels on a Cortex-M4 (QEMU mps2-an386, the
export-c target's compiler flags and linker script): a small program runs every (x1, x2) pair
of ADD under several quantizations, a 7x7x1280 MEAN and a channel concat, and prints an FNV-1a
hash of all outputs, which must equal the hash of the NumPy spec's outputs."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess

import numpy as np

import edgecnn.backends.reference as spec
from edgecnn.export_c import stubs_dir
from edgecnn.export_c.targets import TARGETS, target_mk
from edgecnn.reference.params import ConcatParams, make_add_params, make_mean_params
from graph_op_cases import ADD_ALL_PAIRS

MEAN_Q = (0.05, -3, 0.02, 4)

_MAIN = r"""
#include <stdio.h>
#include "ec_kernels.h"
#include "ec_port.h"

static const ec_add_params_t adds[] = {ADDS};
static const ec_mean_params_t mean = MEAN;
static const ec_concat_params_t concat = {2};
static int8_t v[256], o[65536], x[7 * 7 * 1280], om[1280], joined[49 * 1536];
static uint64_t h = 1469598103934665603ull;

static void fnv(const int8_t *p, int32_t n) {
    int32_t i;
    for (i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
}

int main(int argc, char **argv) {
    const ec_broadcast_t pairs = {2, {256, 256}, {1, 0}, {0, 1}}; /* (256, 1) + (1, 256) */
    const ec_dims_t d = {7, 7, 1280};
    const int8_t *parts[2] = {x, o}; /* (49, 1280) and (49, 256) joined on the channels */
    const int32_t copies[2] = {1280, 256};
    char line[40];
    int32_t i, n;
    (void)argc;
    (void)argv;
    for (i = 0; i < 256; i++) v[i] = (int8_t)(i - 128);
    for (i = 0; i < (int32_t)(sizeof adds / sizeof adds[0]); i++) {
        ec_add_s8(v, v, &pairs, &adds[i], o);
        fnv(o, 65536);
    }
    for (i = 0; i < 7 * 7 * 1280; i++) x[i] = (int8_t)((uint32_t)i * 2654435761u >> 24);
    ec_mean_s8(x, &d, &mean, om);
    fnv(om, 1280);
    ec_concat_s8(parts, copies, &concat, 49, joined);
    fnv(joined, 49 * 1536);
    n = snprintf(line, sizeof line, "%08lx%08lx\n", (unsigned long)(h >> 32),
                 (unsigned long)(h & 0xffffffffu));
    ec_port_write(line, n);
    return 0;
}
"""


def _fnv(h: int, data: bytes) -> int:
    for byte in data:
        h = ((h ^ byte) * 1099511628211) % (1 << 64)
    return h


def _init(record) -> str:
    return "{" + ", ".join(str(int(getattr(record, f.name)))
                           for f in dataclasses.fields(record)) + "}"


def test_c_kernels_on_cortex_m4_equal_the_spec(tmp_path):
    values = np.arange(-128, 128, dtype=np.int8)
    adds = [make_add_params(*q, act) for q in ADD_ALL_PAIRS for act in ("none", "relu6")]
    mean = make_mean_params((1, 7, 7, 1280), [1, 2], *MEAN_Q)
    h = 1469598103934665603
    out = np.empty((256, 256), np.int8)
    for p in adds:
        spec.add_s8(values[:, None], values[None, :], p, out)
        h = _fnv(h, out.tobytes())
    x = ((np.arange(7 * 7 * 1280, dtype=np.uint64) * 2654435761 % (1 << 32)) >> 24)
    x = x.astype(np.uint8).view(np.int8).reshape(7, 7, 1280)
    om = np.empty(1280, np.int8)
    spec.mean_s8(x, mean, om)
    h = _fnv(h, om.tobytes())
    joined = np.empty((49, 1536), np.int8)
    spec.concat_s8([x.reshape(49, 1280), out.reshape(-1)[:49 * 256].reshape(49, 256)], 1,
                   ConcatParams(2), joined)
    h = _fnv(h, joined.tobytes())

    target = TARGETS["cortex-m4"]
    mk = target_mk(target)
    stubs = stubs_dir()
    for name in ("ec_add.c", "ec_mean.c", "ec_concat.c", "ec_kernels.h", "ec_config.h",
                 "fixedpoint.h", "ec_port.h", *mk["port_srcs"].split()):
        shutil.copyfile(stubs / name, tmp_path / name)
    for name in ("sections.ld", target.linker_script):
        shutil.copyfile(stubs / "boards" / name, tmp_path / name)
    main = _MAIN.replace("ADDS", ", ".join(_init(p) for p in adds)).replace("MEAN", _init(mean))
    (tmp_path / "main.c").write_text(main)
    subprocess.run(f"{mk['cc']} -std=c99 -Wall -Wextra -Werror {mk['opt']} {mk['arch_flags']} "
                   f"main.c ec_add.c ec_mean.c ec_concat.c {mk['port_srcs']} {mk['ldflags']} "
                   f"-o {mk['program']}", shell=True, cwd=tmp_path, check=True)
    run = subprocess.run(mk["run"], shell=True, cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"{h:016x}", "Cortex-M4 kernels differ from the NumPy spec"
