"""Compiled Cython kernels (private). Call them through edgecnn.backends.cython."""
