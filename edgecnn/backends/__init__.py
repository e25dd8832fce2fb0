"""Kernel backends with one signature each: reference (NumPy, the spec) and cython."""
