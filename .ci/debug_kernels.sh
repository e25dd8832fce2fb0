#!/usr/bin/env bash
# CI debug job: build a bounds-checked copy of the Cython kernels (EDGECNN_DEBUG=1: Cython
# boundscheck/initializedcheck on, -O0 -g) in a throwaway venv and run the kernel suite on it.
# The working tree is never rebuilt: the tracked files are copied to a temp folder first, and
# the generated .c files are not copied, so cythonize must regenerate them with the debug
# directives (a stale .c would silently keep bounds checks off).
#
#   .ci/debug_kernels.sh            # leaves nothing behind
#   KEEP=1 .ci/debug_kernels.sh     # keeps the temp folder (printed) for a second look
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
start=$(date +%s)

work=$(mktemp -d "${TMPDIR:-/tmp}/edgecnn-debug.XXXXXX")
if [ -z "${KEEP:-}" ]; then trap 'rm -rf "$work"' EXIT; else echo "keeping $work"; fi
src="$work/src"
mkdir -p "$src"
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$src"
rm -f "$src"/cython_kernels/*.c

# A clean venv: the system site-packages may hold an editable edgecnn that would shadow ours.
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install -q numpy pillow click pytest "Cython>=3.0" "setuptools>=64" wheel
EDGECNN_DEBUG=1 "$py" -m pip install -q --no-deps --no-build-isolation "$src"

# Run from a folder without the sources, so `import edgecnn` is the debug build.
cp -r "$src/tests" "$work/tests"
cd "$work"
"$py" - <<'PY'
import numpy as np
import edgecnn._kernels.pool as pool
assert "/venv/" in pool.__file__, pool.__file__
x = np.zeros((4, 4, 2), np.int8)
out = np.zeros((2, 2, 0), np.int8)  # no channels: &out[0, 0, 0] is out of bounds
try:
    pool.max_pool_s8(x, 2, 2, 2, 2, 0, 0, -128, 127, out)
except IndexError:
    print("debug build: bounds checks are on (an undersized output raised IndexError)")
else:
    raise SystemExit("debug build: an undersized output buffer was not caught; bounds checks are off")
PY
"$work/venv/bin/pytest" -q -p no:cacheprovider tests/test_kernels.py tests/test_graph_op_kernels.py
echo "debug kernels: $(( $(date +%s) - start )) s"
