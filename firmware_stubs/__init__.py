"""C99 sources, templates, Makefile and linker scripts that ``edgecnn export-c`` copies and fills.

Data only: nothing here is imported. ``fixedpoint.h`` is a link to cython_kernels/fixedpoint.h so
host kernels and firmware share one rounding header.
"""
