"""One line for the CI log: the CPU as programs see it, numpy, LiteRT, and the kernel path edgecnn
chose. Run with the venv's Python inside the emulated Pi, before its tests."""

import ctypes
import platform
from importlib import metadata

import numpy

HWCAP_ASIMDDP = 1 << 20  # arm64 AT_HWCAP bit: SDOT/UDOT

hwcap = ctypes.CDLL(None).getauxval(16)  # AT_HWCAP
try:
    from edgecnn.backends.cython import kernel_isa
    isa = kernel_isa()
except ImportError:
    isa = "(no kernel_isa() in this build)"
runtimes = []
for dist in ("ai-edge-litert", "tflite-runtime"):
    try:
        runtimes.append(f"{dist} {metadata.version(dist)}")
    except metadata.PackageNotFoundError:
        pass
print(f"platform: {platform.machine()}, HWCAP asimddp={bool(hwcap & HWCAP_ASIMDDP)}, "
      f"numpy {numpy.__version__}, {', '.join(runtimes) or 'no LiteRT'}, kernel_isa: {isa}")
