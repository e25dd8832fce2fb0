# cython: cdivision=True, language_level=3
# (boundscheck and wraparound come from setup.py: off, or on with EDGECNN_DEBUG=1)
# The machine floor's two measurements (machine.h), timed here around the C loops with the GIL
# released: the peak int8 multiply-add rate of a kernel path and the streaming read bandwidth,
# each on 1..n threads of the kernels' worker pool (adopted from conv, one pool per process).
# edgecnn/machine.py repeats them, keeps the best and caches the result per process.
import time

from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdint cimport uint8_t, uint64_t

from gemm_s8 cimport EC_ISA_COUNT, ec_isa_names, ec_isa_supported, ec_pool_adopt, ec_pool_run_fn

from edgecnn._kernels import conv as _conv

ec_pool_adopt(<ec_pool_run_fn>PyCapsule_GetPointer(_conv.pool_capsule(), _conv.POOL_CAPSULE))


cdef extern from "machine.h" nogil:
    double ec_peak_threads(int isa, long iters, int nthreads)
    uint64_t ec_stream_read_threads(const uint8_t* p, size_t n, int nthreads, int passes)


def _isa_code(str name):
    for i in range(EC_ISA_COUNT):
        if ec_isa_names[i].decode() == name:
            if not ec_isa_supported(i):
                raise ValueError(f"kernel ISA {name!r} is not supported on this CPU")
            return i
    raise ValueError(f"unknown kernel ISA {name!r}")


def peak_loop(str isa, long iters, int threads=1):
    """(multiply-adds, seconds) of `threads` side-by-side loops of `iters` steps of the path's
    dot-product instruction (machine.h)."""
    cdef int code = _isa_code(isa)
    cdef double macs
    t0 = time.perf_counter()
    with nogil:
        macs = ec_peak_threads(code, iters, threads)
    return macs, time.perf_counter() - t0


def stream_read(const uint8_t[::1] buf, int threads=1, int passes=1):
    """Seconds to read `buf` (length a multiple of 256 * threads) `passes` times, in `threads`
    shares (each thread reads its share `passes` times in a row)."""
    cdef uint64_t s
    cdef size_t n = buf.shape[0]
    t0 = time.perf_counter()
    with nogil:
        s = ec_stream_read_threads(&buf[0], n, threads, passes)
    return time.perf_counter() - t0
