#!/usr/bin/env bash
# edgecnn on arm64 (Raspberry Pi 4 and 5) under QEMU user emulation: a Debian bookworm arm64
# chroot (Python 3.11, numpy 1.24 as on Raspberry Pi OS), edgecnn built inside it with pip
# exactly as on a Pi, then a test subset in each of {Debian numpy 1.24 + tflite-runtime 2.14,
# numpy 2} x {Cortex-A72 (Pi 4), Cortex-A76 (Pi 5)}. Any failure fails the stage.
#
# Idempotent: reuses the chroot under $EDGECNN_ARM64_DIR (default /var/tmp/edgecnn-arm64) when
# present, else debootstraps one (4-6 min, 650 MB). Every mount lives in a private mount
# namespace (unshare -m), so nothing stays mounted when the script ends, however it ends.
# Emulation is 6-20x slower than a real Pi: these runs check correctness, never speed.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BASE=${EDGECNN_ARM64_DIR:-/var/tmp/edgecnn-arm64}
ROOT=$BASE/root
CPUS=(cortex-a72 cortex-a76)
# The sdot path must be taken where the CPU has it (A76, armv8.2 dotprod) and only there.
declare -A EXPECT_ISA=([cortex-a72]=neon [cortex-a76]=neon-sdot)
# The subset: the kernels against the NumPy spec (test_kernels_fast and test_depthwise's bound
# kernel tests run every path the CPU can run: NEON on the A72, NEON and sdot on the A76) and
# against LiteRT's kernels, LeNet-5 end to end (.pt -> int8 .tflite -> verify every tensor against LiteRT
# BUILTIN_REF), the CLI and the platform checks. None of these files imports torch. Left out for
# time only: the demo command (a rerun of the end-to-end path) and the reference backend's
# LeNet verify (the NumPy spec is the same Python on every CPU, and the kernel tests compare it
# with the compiled kernels already).
TESTS=(tests/test_platform.py tests/arm64 tests/test_kernels.py tests/test_kernels_fast.py tests/test_kernels_litert.py
       tests/test_graph_op_kernels.py tests/test_graph_op_kernels_litert.py
       tests/test_depthwise.py::test_bound_depthwise_every_isa
       tests/test_depthwise.py::test_bound_depthwise_threads_mobilenet_scale
       tests/test_depthwise.py::test_bound_depthwise_3x3_rows_every_isa
       tests/test_end_to_end.py tests/test_cli.py)
# tflite-micro has no aarch64 wheel: its comparisons run in the x86 suite.
DESELECT="not test_demo_command and not bit_exact_against_litert_reference[reference] and not tflite_micro"

START=$SECONDS
mkdir -p "$BASE"
CPU=0
say() { printf '[arm64 %3dm%02ds] %s\n' $(((SECONDS - START) / 60)) $(((SECONDS - START) % 60)) "$*"; }
# Wall seconds per step, and the CPU seconds it used (user + sys of every process it waited
# for: QEMU included), which tell what the step costs on an idle machine of 2 cores.
TIMES=()
cpu_now() {  # sets CPU_NOW: CPU seconds used by this script's children so far
    times >"$BASE/.times"  # a builtin with a redirection runs in this shell: its children's totals
    CPU_NOW=$(awk 'NR == 2 { s = 0; for (i = 1; i <= NF; i++) { split($i, p, "m"); s += p[1] * 60 + p[2] }; print int(s) }' "$BASE/.times")
}
mark() {
    cpu_now
    TIMES+=("$(printf '%-46s %5ds wall %5ds CPU' "$1" $((SECONDS - $2)) $((CPU_NOW - CPU)))")
    CPU=$CPU_NOW
}

# ---------------------------------------------------------------- 1. QEMU, binfmt, chroot
t=$SECONDS
if ! command -v qemu-aarch64-static >/dev/null || ! command -v debootstrap >/dev/null \
   || ! command -v update-binfmts >/dev/null; then
    say "installing qemu-user-static, binfmt-support, debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        qemu-user-static binfmt-support debootstrap >/dev/null
fi
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64 2>/dev/null || true
# The F flag opens the interpreter at registration, so arm64 programs also run inside the chroot.
grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
    || { echo "qemu-aarch64 binfmt entry missing or without the F flag" >&2; exit 1; }
mark "host tools + binfmt" "$t"

t=$SECONDS
if [ ! -e "$ROOT/.edgecnn-base" ]; then
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    say "debootstrap bookworm arm64 from $mirror into $ROOT (4-6 min)"
    # An interrupted debootstrap can leave its /proc mounted in the half-made tree.
    findmnt -n -l -o TARGET | awk -v p="$ROOT.new/" 'index($0, p) == 1' | sort -r | xargs -r -n1 umount -l
    rm -rf "$ROOT.new" && mkdir -p "$BASE"
    debootstrap --arch=arm64 --variant=minbase \
        --include=python3,python3-dev,python3-venv,python3-pip,python3-numpy,gcc,libc6-dev,ca-certificates \
        bookworm "$ROOT.new" "$mirror" >"$BASE/debootstrap.log" 2>&1 \
        || { tail -30 "$BASE/debootstrap.log" >&2; exit 1; }
    rm -rf "$ROOT" && mv "$ROOT.new" "$ROOT" && touch "$ROOT/.edgecnn-base"
else
    say "reusing the chroot in $ROOT"
fi
# What pip inside needs from the host: name resolution and the CA bundle the host trusts.
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp -L "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$ROOT/etc/ssl/host-ca.crt"
mark "chroot (debootstrap or reuse)" "$t"

# in_pi CPU CMD...: CMD inside the chroot as that CPU, with an ARM /proc/cpuinfo (QEMU shows the
# host's x86 one, on which ai-edge-litert crashes) and QEMU_CPU pinned (QEMU's default "max" CPU
# has SME, on which ai-edge-litert computes wrong int8 results).
in_pi() {
    local cpu=$1; shift
    unshare --mount --propagation private -- /bin/bash -c '
        root=$1 cpuinfo=$2; shift 2
        mount -t proc proc "$root/proc"
        mount --bind "$cpuinfo" "$root/proc/cpuinfo"
        mount --bind /dev "$root/dev"
        mount -t sysfs sysfs "$root/sys"  # without it LiteRT finds no CPU and skips XNNPACK
        mount -t tmpfs tmpfs "$root/tmp"
        exec chroot "$root" "$@"' _ "$ROOT" "$HERE/cpuinfo-$cpu" \
        /usr/bin/env -i QEMU_CPU="$cpu" HOME=/root LANG=C.UTF-8 PATH=/usr/bin:/bin:/usr/sbin:/sbin \
        PIP_CERT=/etc/ssl/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
        PIP_DEFAULT_TIMEOUT=180 EDGECNN_EXPECT_ISA="${EXPECT_ISA[$cpu]}" "$@"
}

# ---------------------------------------------------------------- 2. build, as on a Pi
# The commit under test (HEAD: in CI a fresh clone; uncommitted edits are not built), fresh
# each run: a source checkout, as someone would `pip install .` it on a Pi. The build (one gcc
# at a time) runs beside the two venvs' dependency installs; the venvs then take the wheel.
t=$SECONDS
rm -rf "$ROOT/work" && mkdir -p "$ROOT/work/src" "$ROOT/work/dist"
git -C "$REPO" archive HEAD | tar -x -C "$ROOT/work/src"
say "building $(git -C "$REPO" log -1 --format='%h %s' | cut -c1-70)"
say "pip wheel . inside the emulated Pi (Cython + the Pi's gcc), beside the venvs' installs"
in_pi cortex-a72 /bin/bash -ec '
    start=$(date +%s)
    python3 -m venv /work/build-venv
    /work/build-venv/bin/pip wheel -q --no-deps -w /work/dist /work/src
    echo "built $(ls /work/dist) in $(($(date +%s) - start))s"' >"$BASE/build.log" 2>&1 &
build=$!

# ---------------------------------------------------------------- 3. two Python environments
# debian: Raspberry Pi OS style, a venv over the Debian packages with numpy held at Debian's
#         version; tflite-runtime 2.14 beside ai-edge-litert for the fallback test.
# numpy2: a plain venv, where pip brings numpy 2.
# Dependencies come from pyproject.toml ([project] dependencies + the test extra).
in_pi cortex-a72 /bin/bash -ec '
    python3 - <<"PY" > /work/requirements.txt
import tomllib
project = tomllib.load(open("/work/src/pyproject.toml", "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["test"]))
PY
    python3 -c "import numpy; print(\"numpy==\" + numpy.__version__)" > /work/debian-numpy.txt
    python3 -m venv --system-site-packages /work/venv-debian
    /work/venv-debian/bin/pip install -q -c /work/debian-numpy.txt -r /work/requirements.txt \
        tflite-runtime==2.14.0
    python3 -m venv /work/venv-numpy2
    /work/venv-numpy2/bin/pip install -q -r /work/requirements.txt "numpy>=2"'
say "venvs ready; waiting for the build"
wait "$build" || { cat "$BASE/build.log" >&2; exit 1; }
cat "$BASE/build.log"
in_pi cortex-a72 /bin/bash -ec '
    for v in debian numpy2; do
        /work/venv-$v/bin/pip install -q --no-deps /work/dist/edgecnn-*.whl
        /work/venv-$v/bin/pip check >/dev/null
        printf "%-7s " $v
        /work/venv-$v/bin/python -c "import numpy; print(\"numpy\", numpy.__version__, \"from\", numpy.__file__.rsplit(\"/\", 2)[0])"
    done'
mark "build (pip wheel .) + venvs, side by side" "$t"

# ---------------------------------------------------------------- 4. the test subset
rm -rf "$ROOT/work/run" && mkdir -p "$ROOT/work/run" && cp -r "$ROOT/work/src/tests" "$ROOT/work/run/"
RESULTS=()
failed=0
for env in debian numpy2; do
    t=$SECONDS
    say "tests, $env numpy: ${CPUS[*]} side by side (one core each)"
    for cpu in "${CPUS[@]}"; do
        in_pi "$cpu" /bin/bash -c '
            cd /work/run
            export EDGECNN_EXPECT_TFLITE_RUNTIME='"$([ "$env" = debian ] && echo 1 || echo 0)"'
            /work/venv-'"$env"'/bin/python /work/src/.ci/arm64/platform_report.py
            exec /work/venv-'"$env"'/bin/pytest -q -p no:cacheprovider -rfE \
                -k "'"$DESELECT"'" '"${TESTS[*]}"'
        ' >"$BASE/test-$env-$cpu.log" 2>&1 &
    done
    wait
    mark "tests: $env numpy (A72 and A76 in parallel)" "$t"
    for cpu in "${CPUS[@]}"; do
        log=$BASE/test-$env-$cpu.log
        echo "----- $env numpy on $cpu (expect kernel ISA ${EXPECT_ISA[$cpu]})"
        grep -v '^[.sxFE]\+ *\[ *[0-9]*%\]$\|^[.sxFE]*$' "$log" | tail -25
        line=$(grep -E '^=*.* (passed|failed|error)' "$log" | tail -1 | tr -d '=' | sed 's/^ *//')
        RESULTS+=("$(printf '%-8s %-11s %s' "$env" "$cpu" "${line:-no pytest summary}")")
        grep -Eq ' passed' <<<"$line" && ! grep -Eq 'failed|error' <<<"$line" || failed=1
    done
done

echo "===== arm64 stage: timing"
printf '%s\n' "${TIMES[@]}"
cpu_now
printf '%-46s %5ds wall %5ds CPU\n' total $((SECONDS - START)) "$CPU_NOW"
echo "===== arm64 stage: results (numpy x CPU)"
printf '%s\n' "${RESULTS[@]}"
exit $failed
