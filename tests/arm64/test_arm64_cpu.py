"""Inside the emulated Raspberry Pi: the CPU is the one asked for (collected only when
.ci/arm64/run.sh sets EDGECNN_EXPECT_ISA)."""

import ctypes
import os

EXPECTED = os.environ["EDGECNN_EXPECT_ISA"]
HWCAP_ASIMDDP = 1 << 20  # arm64 AT_HWCAP bit: SDOT/UDOT (armv8.2 dot product)


def test_cpu_reports_dot_product_exactly_when_expected():
    """The A76 advertises sdot, the A72 does not, so the kernel path test means something."""
    hwcap = ctypes.CDLL(None).getauxval(16)  # AT_HWCAP
    assert bool(hwcap & HWCAP_ASIMDDP) == (EXPECTED == "neon-sdot"), hex(hwcap)
