"""Peak memory of one engine on one model, measured in a fresh process.

Measured in the benchmarking process, a model's resident-set growth depends on what ran
before it (memory freed by an earlier model is reused, a first load imports modules), so each
measurement gets a process of its own: it loads the code first (edgecnn's modules, the
generated .tflite schema, the compiled kernels, LiteRT's libraries: code, not model memory), resets the peak
(``/proc/self/clear_refs``), notes the resident set, builds the engine, runs it once, and
reports the peak resident set (VmHWM) minus that baseline: the model's file or graph, packed
weights, arenas and scratch, whatever was touched at its highest point.

Linux only (``/proc``); elsewhere ``peak_growth`` returns None.

    python -m edgecnn.peak_memory ENGINE MODEL [THREADS]   # prints the bytes
"""

from __future__ import annotations

import os
import subprocess
import sys

ENGINES = ("edgecnn", "litert", "litert-ref")


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def _measure(engine: str, path: str, threads: int) -> int:
    """Runs in the fresh process: the peak growth in bytes."""
    import numpy as np

    from . import litert
    from .runtime import Runtime, kernels_for
    from .tflite import schema
    from .tflite.reader import load_tflite

    interpreter = litert._interpreter_module()
    schema.load()
    kernels_for("cython")  # the compiled kernel modules
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS
    base = _status_kib("VmRSS")
    if engine == "edgecnn":
        graph = load_tflite(path).graph
        rt = Runtime(graph, backend="cython", threads=threads)
        rt.invoke(np.zeros(graph.input.shape, graph.input.dtype))
    else:
        kwargs = {"num_threads": threads}
        if engine == "litert-ref":
            kwargs["experimental_op_resolver_type"] = interpreter.OpResolverType.BUILTIN_REF
        with litert._quiet_native_stderr():
            it = interpreter.Interpreter(model_path=path, **kwargs)
            it.allocate_tensors()
        d = it.get_input_details()[0]
        it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
        it.invoke()
    return (_status_kib("VmHWM") - base) * 1024


def peak_growth(model_path: str, engine: str, threads: int = 1, timeout: float = 300.0):
    """Bytes of peak resident-set growth of ``engine`` building and running ``model_path``
    once, in a fresh process; None where /proc is missing or the child fails."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    if not os.path.exists("/proc/self/clear_refs"):
        return None
    try:
        done = subprocess.run([sys.executable, "-m", "edgecnn.peak_memory", engine,
                               os.fspath(model_path), str(int(threads))],
                              capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    try:
        return int(done.stdout.split()[-1])
    except (ValueError, IndexError):
        return None


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3) or args[0] not in ENGINES:
        print(f"usage: python -m edgecnn.peak_memory {{{','.join(ENGINES)}}} MODEL [THREADS]",
              file=sys.stderr)
        return 2
    print(_measure(args[0], args[1], int(args[2]) if len(args) == 3 else 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
