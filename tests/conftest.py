"""Shared fixtures: ``backend`` runs every kernel test on each backend."""

from __future__ import annotations

import importlib
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/litert_models.py

BACKENDS = ("reference", "cython")


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The backend module (edgecnn.backends.<name>): the same kernel names and signatures."""
    return importlib.import_module(f"edgecnn.backends.{request.param}")
