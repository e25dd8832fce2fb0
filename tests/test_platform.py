"""Which kernel path this CPU runs.

The arm64 CI stage (.ci/arm64/run.sh) runs this inside QEMU as a Cortex-A72 (Raspberry Pi 4,
no dot product) and a Cortex-A76 (Pi 5, armv8.2 ``sdot``) and sets EDGECNN_EXPECT_ISA to the
path each must take: "neon" and "neon-sdot". Elsewhere the path is only checked to be a known
one. tests/arm64/ holds the checks that only make sense on arm64.
"""

from __future__ import annotations

import os

from edgecnn.backends import cython as cython_backend

KNOWN_ISAS = ("generic", "avx2", "avx512vnni", "avx512amx", "neon", "neon-sdot")
EXPECTED = os.environ.get("EDGECNN_EXPECT_ISA", "")


def test_kernel_isa_is_the_expected_one():
    isa = cython_backend.kernel_isa()
    if EXPECTED:
        assert isa == EXPECTED, f"kernels chose {isa!r}, this CPU should give {EXPECTED!r}"
    else:
        assert isa in KNOWN_ISAS
