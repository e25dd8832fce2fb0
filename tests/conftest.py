"""Shared fixtures: ``backend`` runs every kernel test on each backend: the NumPy reference
(the spec), the Cython kernels, and the firmware's C kernels compiled for the host."""

from __future__ import annotations

import importlib
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/litert_models.py

BACKENDS = ("reference", "cython", "c")


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The backend module: the same kernel names and signatures (edgecnn.backends.<name>, or
    tests/c_backend.py for the C firmware kernels)."""
    if request.param == "c":
        return importlib.import_module("c_backend")
    return importlib.import_module(f"edgecnn.backends.{request.param}")
