"""The machine floor of a model: the least time this CPU could take to run it with edgecnn's
kernel path, from two measurements and the model's per-layer costs.

- ``peak_macs(threads)``: int8 multiply-adds per second of the chosen kernel path, measured
  by a tight loop of its real instruction (AMX ``tdpbssd``, AVX-512 ``vpdpbusd``, AVX2
  ``vpmaddwd``, NEON ``sdot``/``smlal``: cython_kernels/machine.h) on ``threads`` threads of
  the kernels' worker pool side by side;
- ``stream_bandwidth(nbytes, threads)``: bytes per second read once, in order, from a buffer
  of ``nbytes`` (the model's weight bytes: the same cache level the weights stream from).

Each is the best of several short trials (a busy shared machine only ever slows a trial
down), measured once per process and cached; a ``Probe`` runs more trials on demand. A layer's floor is
``macs / peak_macs + weight_bytes / stream_bandwidth``, with the MACs and weight bytes of
``edgecnn.summary.summarize`` (one formula for both); the model's floor is their sum.
Activations, padding, pooling and requantization count nothing: the floor is a bound, not
a model of the kernels.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from . import ir

PEAK_TRIALS = 9
PEAK_SECONDS = 0.002  # one trial's length, about
STREAM_TRIALS = 9
STREAM_MIN_BYTES = 1 << 16
STREAM_TRIAL_BYTES = 16 << 20  # a small buffer is read over and over, this much a trial


def _kernels():
    from ._kernels import machine
    return machine


def kernel_isa() -> str:
    """The path the cython backend binds new layers to (what the floor is measured for)."""
    from .backends import cython as K
    return K.kernel_isa()


class Probe:
    """Repeatable trials of both measurements; ``peak[threads]`` and ``bandwidth[threads]``
    keep the best seen per thread count. ``edgecnn bench`` spreads trials over its timed
    rounds, so the floor sees the quietest moments of the same run as the engines it is
    compared with. The stream buffer (``nbytes`` rounded up to 64 KiB) lives as long as the
    probe."""

    def __init__(self, nbytes: int, isa: str | None = None):
        self.isa = isa or kernel_isa()
        size = max(1, -(-int(nbytes) // STREAM_MIN_BYTES)) * STREAM_MIN_BYTES
        self._buf = np.ones(size, np.uint8)  # written once: every page is mapped before timing
        self._passes = max(1, STREAM_TRIAL_BYTES // size)
        macs, seconds = _kernels().peak_loop(self.isa, 1000, 1)  # steps for ~PEAK_SECONDS
        self._iters = max(1000, int(1000 * PEAK_SECONDS / max(seconds, 1e-7)))
        self.peak, self.bandwidth = {}, {}

    def peak_trial(self, threads: int = 1) -> float:
        macs, seconds = _kernels().peak_loop(self.isa, self._iters, threads)
        self.peak[threads] = max(self.peak.get(threads, 0.0), macs / seconds)
        return self.peak[threads]

    def stream_trial(self, threads: int = 1) -> float:
        n = self._buf.size - self._buf.size % (256 * threads)  # whole 256-byte steps a share
        rate = n * self._passes / _kernels().stream_read(self._buf[:n], threads, self._passes)
        self.bandwidth[threads] = max(self.bandwidth.get(threads, 0.0), rate)
        return self.bandwidth[threads]


@functools.lru_cache(maxsize=None)
def peak_macs(threads: int = 1, isa: str | None = None) -> float:
    """Int8 multiply-adds per second of ``isa`` (default: the chosen path) on ``threads``."""
    probe = Probe(STREAM_MIN_BYTES, isa)
    for _ in range(PEAK_TRIALS):
        probe.peak_trial(threads)
    return probe.peak[threads]


@functools.lru_cache(maxsize=None)
def _stream_bandwidth(size: int, threads: int) -> float:
    probe = Probe(size)
    for _ in range(STREAM_TRIALS):
        probe.stream_trial(threads)
    return probe.bandwidth[threads]


def stream_bandwidth(nbytes: int, threads: int = 1) -> float:
    """Bytes per second read from a buffer of ``nbytes`` (rounded up to 64 KiB) in
    ``threads`` equal shares. The size matters: around the last-level cache's share of this
    machine the rate falls several times (measured 28 GB/s at 56 MiB, 8 GB/s at 64 MiB on one
    core of a shared Xeon), so the buffer is exactly as large as the weights."""
    size = max(1, -(-int(nbytes) // STREAM_MIN_BYTES)) * STREAM_MIN_BYTES
    return _stream_bandwidth(size, int(threads))


@dataclass(frozen=True)
class LayerFloor:
    name: str
    type: str
    macs: int
    weight_bytes: int
    seconds: float


@dataclass(frozen=True)
class Floor:
    isa: str
    threads: int
    peak_macs: float  # multiply-adds per second
    bandwidth: float  # bytes per second
    layers: tuple  # LayerFloor, in graph order

    @property
    def seconds(self) -> float:
        return sum(layer.seconds for layer in self.layers)

    def to_dict(self) -> dict:
        return {"isa": self.isa, "threads": self.threads, "peak_macs_per_s": self.peak_macs,
                "bandwidth_bytes_per_s": self.bandwidth, "floor_ms": self.seconds * 1e3,
                "layers": [{"name": f.name, "type": f.type, "macs": f.macs,
                            "weight_bytes": f.weight_bytes, "floor_ms": f.seconds * 1e3}
                           for f in self.layers]}


def weight_bytes(graph: ir.Graph) -> int:
    """The bytes the floor streams: summary's weight bytes of every layer."""
    from .summary import summarize
    return sum(r.weight_bytes for r in summarize(graph).layers)


def model_floor(graph: ir.Graph, threads: int = 1, probe: Probe | None = None) -> Floor:
    """The floor of ``graph`` (shapes inferred) on ``threads`` threads of the chosen path: the
    rates measured here once per process, or the best of a ``probe``'s trials and those."""
    from .summary import summarize
    rows = summarize(graph).layers
    peak = peak_macs(int(threads))
    bandwidth = stream_bandwidth(sum(r.weight_bytes for r in rows), int(threads))
    if probe is not None:
        peak = max(peak, probe.peak.get(int(threads), 0.0))
        bandwidth = max(bandwidth, probe.bandwidth.get(int(threads), 0.0))
    layers = tuple(LayerFloor(r.name, r.type, r.macs, r.weight_bytes,
                              r.macs / peak + r.weight_bytes / bandwidth) for r in rows)
    return Floor(kernel_isa(), int(threads), peak, bandwidth, layers)
