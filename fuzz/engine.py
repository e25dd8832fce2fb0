"""A small, dependency-free mutation fuzzer: deterministic for a seed, so the CI smoke test
(tests/test_fuzz_smoke.py) replays the same inputs every run. The long runs use atheris
(coverage-guided) when it is installed; see fuzz/run_all.py.

Mutations are byte-level (bit flips, interesting 8/16/32/64-bit values at random and at
4-aligned offsets, which is where flatbuffer offsets and lengths live, chunk delete /
duplicate / insert, truncation, splicing two seeds) plus, for SPEC.json, a structural one
that replaces a JSON value with a hostile one. Each input runs under a wall-clock alarm;
going past it is reported as a hang.
"""

from __future__ import annotations

import json
import random
import signal
import time
from dataclasses import dataclass, field

from targets import Bug, run_one, seeds

INTERESTING = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
               0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 1 << 40, (1 << 63) - 1,
               (1 << 64) - 1, 4, 8, 16, 64, 1000)
JSON_VALUES = (0, -1, 1, 2**31, 2**63, -2**63, 10**30, 1e308, -0.0, 0.5, float("nan"),
               float("inf"), "", "x", "conv", "linear", "batchnorm", None, True, False, [], {},
               [0], [1, 2, 3], [[1]], {"type": "conv"}, [-1, -1], [2**40, 1])


class Hang(BaseException):  # not an Exception: run_one must not wrap it as a Bug
    pass


def _alarm(signum, frame):
    raise Hang()


def _int(rng, data, width):
    if len(data) < width:
        return data
    pos = rng.randrange(0, len(data) - width + 1)
    if width == 4 and rng.random() < 0.5:
        pos -= pos % 4
    value = rng.choice(INTERESTING) if rng.random() < 0.7 else rng.getrandbits(width * 8)
    if rng.random() < 0.3:
        value = int.from_bytes(data[pos:pos + width], "little") + rng.choice((-1, 1, -4, 4))
    raw = (value % (1 << (8 * width))).to_bytes(width, "little")
    return data[:pos] + raw + data[pos + width:]


def mutate_bytes(rng: random.Random, data: bytes, pool) -> bytes:
    data = bytearray(data)
    kind = rng.randrange(9)
    n = len(data)
    if n == 0:
        return bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 16)))
    if kind == 0:
        i = rng.randrange(n)
        data[i] ^= 1 << rng.randrange(8)
    elif kind == 1:
        data[rng.randrange(n)] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.getrandbits(8)))
    elif kind in (2, 3):
        data = bytearray(_int(rng, bytes(data), rng.choice((2, 4, 4, 8))))
    elif kind == 4 and n > 1:
        i = rng.randrange(n)
        del data[i:i + rng.randrange(1, min(64, n - i) + 1)]
    elif kind == 5:
        i, j = sorted(rng.randrange(n + 1) for _ in range(2))
        k = rng.randrange(n + 1)
        data[k:k] = data[i:j][:256]
    elif kind == 6:
        return bytes(data[:rng.randrange(n)])
    elif kind == 7:
        other = rng.choice(pool)
        i, j = rng.randrange(n + 1), rng.randrange(len(other) + 1)
        return bytes(data[:i]) + other[j:]
    else:
        k = rng.randrange(n + 1)
        data[k:k] = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 9)))
    return bytes(data)


def mutate_json(rng: random.Random, data: bytes) -> bytes:
    try:
        doc = json.loads(data)
    except ValueError:
        return data
    nodes = []

    def walk(node):
        if isinstance(node, dict):
            for k in list(node):
                nodes.append((node, k))
                walk(node[k])
        elif isinstance(node, list):
            for i in range(len(node)):
                nodes.append((node, i))
                walk(node[i])

    walk(doc)
    if not nodes:
        return data
    parent, k = rng.choice(nodes)
    choice = rng.random()
    if choice < 0.7:
        parent[k] = rng.choice(JSON_VALUES)
    elif choice < 0.85 and isinstance(parent, list):
        parent.insert(k, parent[k])
    elif isinstance(parent, dict):
        parent[rng.choice(("stride", "padding", "kernel", "filters", "units", "groups",
                           "dilation", "ceil_mode", "output", "eps", "bogus"))] = rng.choice(JSON_VALUES)
    else:
        del parent[k]
    return json.dumps(doc).encode()


@dataclass
class Stats:
    target: str
    runs: int = 0
    parsed: int = 0
    seconds: float = 0.0
    bugs: list = field(default_factory=list)  # (input bytes, message)
    hangs: list = field(default_factory=list)


def fuzz(target: str, *, seed: int = 0, runs: int | None = None, seconds: float | None = None,
         timeout: float = 10.0, stop_on_bug: bool = False) -> Stats:
    """Run ``target`` on mutated seeds until ``runs`` inputs or ``seconds`` have passed."""
    rng = random.Random(seed)
    pool = seeds(target)
    stats = Stats(target)
    start = time.monotonic()
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        inputs = list(pool)  # every seed once, unmutated, first
        while True:
            if runs is not None and stats.runs >= runs:
                break
            if seconds is not None and time.monotonic() - start >= seconds:
                break
            if inputs:
                data = inputs.pop()
            else:
                data = rng.choice(pool)
                for _ in range(rng.choice((1, 1, 2, 3, 5))):
                    if target == "spec" and rng.random() < 0.6:
                        data = mutate_json(rng, data)
                    else:
                        data = mutate_bytes(rng, data, pool)
            stats.runs += 1
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                stats.parsed += run_one(target, data)
            except Bug as e:
                stats.bugs.append((data, str(e)))
            except Hang:
                stats.hangs.append((data, f"{target}: no answer within {timeout} s"))
            except RecursionError as e:
                stats.bugs.append((data, f"{target}: RecursionError: {e}"))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            if stop_on_bug and (stats.bugs or stats.hangs):
                break
    finally:
        signal.signal(signal.SIGALRM, old)
        stats.seconds = time.monotonic() - start
    return stats

