"""Fuzz every parser for a while; report inputs run, crashes and hangs per target.

    python fuzz/run_all.py --seconds 300                  # atheris if installed, else builtin
    python fuzz/run_all.py --seconds 60 --engine builtin --targets tflite spec
    python fuzz/run_all.py --replay fuzz/crashes/tflite-<hash>   # re-run one saved input

Engines: ``atheris`` (coverage-guided libFuzzer, one subprocess per target, working corpus
in a temp folder seeded from fuzz/corpus and the repo's fixtures; ``pip install atheris``)
or ``builtin`` (fuzz/engine.py: seeded random mutations, no dependencies). Failing inputs
are written to fuzz/crashes/<target>-<sha1>; the exit code is 1 if any target failed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from targets import HERE, TARGETS, Bug, run_one, seeds  # noqa: E402

CRASHES = os.path.join(HERE, "crashes")


def save(target, data):
    os.makedirs(CRASHES, exist_ok=True)
    path = os.path.join(CRASHES, f"{target}-{hashlib.sha1(data).hexdigest()[:16]}")
    with open(path, "wb") as f:
        f.write(data)
    return path


def run_builtin(target, seconds, seed, timeout):
    from engine import fuzz
    stats = fuzz(target, seed=seed, seconds=seconds, timeout=timeout)
    for data, msg in stats.bugs + stats.hangs:
        print(f"  {msg.splitlines()[0][:200]}  -> {save(target, data)}")
    return stats.runs, len(stats.bugs), len(stats.hangs)


def run_atheris(target, seconds, seed, timeout):
    work = tempfile.mkdtemp(prefix=f"edgecnn-fuzz-{target}-")
    try:
        corpus = os.path.join(work, "corpus")
        os.makedirs(corpus)
        for data in seeds(target):
            with open(os.path.join(corpus, hashlib.sha1(data).hexdigest()), "wb") as f:
                f.write(data)
        artifacts = os.path.join(work, "artifacts") + os.sep
        os.makedirs(artifacts)
        cmd = [sys.executable, os.path.join(HERE, "atheris_target.py"), target, corpus,
               f"-max_total_time={int(seconds)}", f"-timeout={int(timeout)}", f"-seed={seed}",
               "-rss_limit_mb=4096", "-max_len=200000", f"-artifact_prefix={artifacts}",
               "-print_final_stats=1", "-close_fd_mask=1"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        log = proc.stderr
        runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", log)
        runs = int(runs[-1]) if runs else max([int(n) for n in re.findall(r"^#(\d+)", log, re.M)] or [0])
        bugs = hangs = 0
        for name in sorted(os.listdir(artifacts)):
            if name.startswith("slow-unit"):  # libFuzzer's note of an input over 10 s: not a
                continue                      # failure (export_c_asan builds C per input)
            with open(os.path.join(artifacts, name), "rb") as f:
                data = f.read()
            kind = "hang" if name.startswith("timeout") else "crash"
            hangs += kind == "hang"
            bugs += kind != "hang"
            print(f"  {kind}: {name} -> {save(target, data)}")
        if proc.returncode != 0 and not (bugs or hangs):
            bugs += 1
            print("  atheris stopped without an artifact:\n" + log[-2000:])
        elif bugs:
            tail = [line for line in log.splitlines() if "Bug:" in line or "Error" in line]
            print("  " + "\n  ".join(tail[-3:]))
        return runs, bugs, hangs
    finally:
        shutil.rmtree(work, ignore_errors=True)


def replay(path):
    target = os.path.basename(path).split("-", 1)[0]
    with open(path, "rb") as f:
        data = f.read()
    try:
        print(f"{target}: {'parsed' if run_one(target, data) else 'refused with an EdgecnnError'}")
        return 0
    except Bug:
        raise


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60, help="per target")
    ap.add_argument("--targets", nargs="+", choices=sorted(TARGETS), default=list(TARGETS))
    ap.add_argument("--engine", choices=["auto", "atheris", "builtin"], default="auto")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=10, help="seconds before an input is a hang")
    ap.add_argument("--replay", help="run one saved input and show what happens")
    args = ap.parse_args(argv)
    if args.replay:
        return replay(args.replay)
    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401
            engine = "atheris"
        except ImportError:
            engine = "builtin"
    run = run_atheris if engine == "atheris" else run_builtin
    rows, failed = [], False
    for target in args.targets:
        print(f"{target}: fuzzing {args.seconds:g} s with {engine}", flush=True)
        start = time.monotonic()
        runs, bugs, hangs = run(target, args.seconds, args.seed, args.timeout)
        rows.append((target, runs, bugs, hangs, time.monotonic() - start))
        failed |= bool(bugs or hangs)
    print(f"\n{'target':<10} {'inputs':>10} {'crashes':>8} {'hangs':>6} {'seconds':>8}")
    for target, runs, bugs, hangs, secs in rows:
        print(f"{target:<10} {runs:>10} {bugs:>8} {hangs:>6} {secs:>8.0f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
