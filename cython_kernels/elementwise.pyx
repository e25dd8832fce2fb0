# cython: language_level=3
# placeholder until the kernel lands
