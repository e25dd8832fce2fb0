"""Targets of export-c: the host, and Cortex-M cores on the QEMU boards that emulate them.

Each Cortex-M target names its QEMU board, linker script (firmware_stubs/boards/), float ABI,
the board's code and data memory (the limits a model must fit), and QEMU's core clock, which turns
SysTick ticks into emulated instructions under ``-icount shift=0`` (1 ns per instruction).
"""

from __future__ import annotations

from dataclasses import dataclass

STACK_BYTES = 1024  # reserved by the linker scripts; `make stack`: < 400 on the deepest path
RUNTIME_STATIC_BYTES = 256  # model_test's line buffer and the port's state (.data + .bss)
QEMU_FLAGS = ("-nographic -monitor none -serial none -semihosting-config enable=on,target=native "
              "-icount shift=0")


@dataclass(frozen=True)
class Target:
    name: str
    cpu: str = ""  # -mcpu; empty for the host
    board: str = ""  # QEMU -M
    linker_script: str = ""
    float_flags: str = ""
    flash_bytes: int = 0  # 0: no limit (host)
    ram_bytes: int = 0
    core_hz: int = 0  # QEMU's core clock: SysTick ticks * 1e9 / core_hz = instructions (icount 0)
    code_bytes: int = 0  # kernels, test harness, libc: LeNet-5 measured at -O2 with
    # arm-none-eabi-gcc 12.2 (M0 5.3 KB, M3 4.7, M4/M7 6.9, M33 6.7, M55 5.9) plus ~2 KB for the
    # kernels LeNet does not link (softmax, quantize, average pool); a model whose layers keep
    # the f64 or fp32 policy links soft-float on cores without that FPU on top

    @property
    def is_host(self) -> bool:
        return not self.cpu

    @property
    def kernel_path(self) -> str:
        """The kernel path the core compiles (firmware_stubs/ec_simd.h): mve, dsp or c."""
        return {"cortex-m55": "mve", "cortex-m4": "dsp", "cortex-m7": "dsp",
                "cortex-m33": "dsp"}.get(self.cpu, "c")


TARGETS = {t.name: t for t in (
    Target("host", code_bytes=0),
    Target("cortex-m0", "cortex-m0", "microbit", "microbit.ld", "-mfloat-abi=soft",
           256 << 10, 16 << 10, 16_000_000, 8_000),
    Target("cortex-m3", "cortex-m3", "mps2-an385", "mps2.ld", "-mfloat-abi=soft",
           4 << 20, 4 << 20, 25_000_000, 7_000),
    Target("cortex-m4", "cortex-m4", "mps2-an386", "mps2.ld",
           "-mfloat-abi=hard -mfpu=fpv4-sp-d16", 4 << 20, 4 << 20, 25_000_000, 9_000),
    Target("cortex-m7", "cortex-m7", "mps2-an500", "mps2.ld", "-mfloat-abi=hard -mfpu=fpv5-d16",
           4 << 20, 4 << 20, 25_000_000, 9_000),
    Target("cortex-m33", "cortex-m33", "mps2-an505", "mps2_an505.ld",
           "-mfloat-abi=hard -mfpu=fpv5-sp-d16", 4 << 20, 2 << 20, 20_000_000, 9_000),
    Target("cortex-m55", "cortex-m55", "mps3-an547", "mps3_an547.ld", "-mfloat-abi=hard",
           512 << 10, 512 << 10, 32_000_000, 8_000),
)}


def target_mk(target: Target) -> dict:
    """The values of target.mk; ``program``/``run`` build and run the default program from a
    shell, ``run_make`` is the Makefile's (any program name, e.g. with EC_PROFILE=1)."""
    if target.is_host:
        return dict(target="host", cc="cc", size="size", opt="-O2", arch_flags="",
                    port_srcs="ec_port_host.c", exe="", program="model_test", ldflags="-lm",
                    run="./model_test in.bin", run_make="./$(PROGRAM) in.bin")
    qemu = f"timeout 600 qemu-system-arm -M {target.board} {QEMU_FLAGS} -kernel"
    ldflags = (f"-L. -T {target.linker_script} -Wl,--defsym=EC_STACK_SIZE={STACK_BYTES} "
               "-Wl,--gc-sections --specs=nano.specs --specs=rdimon.specs -nostartfiles -lm")
    return dict(target=target.name, cc="arm-none-eabi-gcc", size="arm-none-eabi-size", opt="-O2",
                arch_flags=f"-mcpu={target.cpu} -mthumb {target.float_flags}",
                port_srcs="ec_port_semihost.c startup_cortexm.c", exe=".elf",
                program="model_test.elf", ldflags=ldflags, run=f"{qemu} model_test.elf",
                run_make=f"{qemu} $(PROGRAM)")
