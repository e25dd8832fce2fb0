"""Build the Cython kernels and map converters/ to edgecnn.converters.

Every extension is listed explicitly. Optimization flags live in one place (``_compile_args``):
a portable build by default (-O3, baseline ISA; CPU-specific paths are chosen at run time),
``EDGECNN_NATIVE=1`` adds -march=native, ``EDGECNN_DEBUG=1`` rebuilds with Cython bounds checks
and -O0 -g for the debug CI job.
"""

import glob
import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

DEBUG = os.environ.get("EDGECNN_DEBUG") == "1"
NATIVE = os.environ.get("EDGECNN_NATIVE") == "1"

KERNELS = ["conv", "depthwise", "pool", "fully_connected", "elementwise", "graph_ops",
           "machine"]
HEADERS = sorted(glob.glob("cython_kernels/*.h"))  # a changed header rebuilds the kernels


def _compile_args():
    if sys.platform == "win32":
        return ["/O2", "/openmp"], []
    args = ["-O0", "-g"] if DEBUG else ["-O3"]
    if NATIVE:
        args.append("-march=native")
    return args + ["-fopenmp"], ["-fopenmp"]


def _extensions():
    compile_args, link_args = _compile_args()
    return [
        Extension(
            f"edgecnn._kernels.{name}",
            [f"cython_kernels/{name}.pyx"],
            include_dirs=["cython_kernels"],
            depends=HEADERS,
            extra_compile_args=compile_args,
            extra_link_args=link_args,
        )
        for name in KERNELS
    ]


def _packages():
    """edgecnn and every subpackage below it, converters/ as edgecnn.converters and
    firmware_stubs/ as edgecnn.firmware_stubs (package_dir below), each with its subpackages:
    found on disk, so a new folder with an __init__.py cannot be left out of a plain install."""
    out = []
    for name, folder in (("edgecnn", "edgecnn"), ("edgecnn.converters", "converters"),
                         ("edgecnn.firmware_stubs", "firmware_stubs")):
        out += [name] + [f"{name}.{sub}" for sub in find_packages(folder)]
    return out


directives = {"language_level": "3", "boundscheck": DEBUG, "wraparound": False,
              "cdivision": True, "initializedcheck": DEBUG}

setup(
    options={"build_ext": {"parallel": os.cpu_count() or 1}},  # the kernels compile side by side
    packages=_packages(),
    package_dir={"edgecnn.converters": "converters", "edgecnn.firmware_stubs": "firmware_stubs"},
    ext_modules=cythonize(_extensions(), compiler_directives=directives),
    include_package_data=True,
)
