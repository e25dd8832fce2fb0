# cython: cdivision=True, language_level=3
# (boundscheck and wraparound come from setup.py: off, or on with EDGECNN_DEBUG=1)
# int8 ADD, MEAN over H and W, and CONCATENATION: twins of edgecnn/reference/add.py, mean.py
# and concat.py (LiteRT 2.3 BUILTIN_REF). The arithmetic is in graph_ops.h; arrays arrive as
# flat C-contiguous views (the Python wrappers in edgecnn/backends/cython.py reshape without
# copying). BoundAdd holds ADD's derived constants, its broadcast walk and the ISA path chosen
# when it is bound (cpu_features.h; force_isa pins one, as for conv); mean_s8 takes the current
# path at each call.
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdint cimport int8_t, int32_t
from libc.string cimport memcpy

from gemm_s8 cimport ec_pool_adopt, ec_pool_run_fn

from edgecnn._kernels import conv as _conv

# one worker pool per process: conv's
ec_pool_adopt(<ec_pool_run_fn>PyCapsule_GetPointer(_conv.pool_capsule(), _conv.POOL_CAPSULE))


cdef extern from "graph_ops.h" nogil:
    int EC_ISA_COUNT
    int EC_MAX_DIMS
    const char* ec_isa_names[]
    int ec_isa_supported(int isa)
    int ec_current_isa()
    int ec_force_isa(const char* name)
    ctypedef struct ec_add_k:
        pass
    ctypedef void (*ec_add_run_fn)(const int8_t*, Py_ssize_t, const int8_t*, Py_ssize_t,
                                   int8_t*, Py_ssize_t, const ec_add_k*)
    int ec_add_prepare(ec_add_k* k, int32_t input1_offset, int32_t input2_offset,
                       int32_t input1_multiplier, int32_t input1_shift,
                       int32_t input2_multiplier, int32_t input2_shift,
                       int32_t output_multiplier, int32_t output_shift, int32_t output_offset,
                       int32_t act_min, int32_t act_max)
    ec_add_run_fn ec_add_run_for(int isa)
    void ec_add_s8(ec_add_run_fn run, const int8_t* x1, const int8_t* x2, int8_t* out, int rank,
                   const int32_t* size, const int32_t* stride1, const int32_t* stride2,
                   const ec_add_k* k, int nthreads)
    void ec_mean_s8(int isa, const int8_t* x, Py_ssize_t count, Py_ssize_t c,
                    int32_t multiplier, int32_t shift, int32_t input_offset,
                    int32_t output_offset, int policy, float scale, float bias, int8_t* out)


cdef int _num_threads = 1


def set_num_threads(int n):
    """Threads of ADD (blocks of its runs, from 32768 outputs on)."""
    global _num_threads
    _num_threads = max(1, n)


def kernel_isa():
    """The path new ADD bindings use: avx512vnni, avx2, neon-sdot, neon or generic."""
    return ec_isa_names[ec_current_isa()].decode()


def force_isa(str name):
    """Pin the path of later bindings (names as conv.force_isa, which validates them)."""
    if ec_force_isa(name.encode()) != 0:
        raise ValueError(f"kernel ISA {name!r} is unknown or not supported on this CPU")


cdef class BoundAdd:
    """run(x1, x2, out): flat int8 views of the two operands and of the broadcast output."""
    cdef ec_add_k k
    cdef ec_add_run_fn run
    cdef int rank
    cdef int32_t size[8]
    cdef int32_t stride1[8]
    cdef int32_t stride2[8]
    cdef Py_ssize_t n1, n2, n_out
    cdef readonly str isa

    def __init__(self, int left_shift, int input1_offset, int input2_offset,
                 int input1_multiplier, int input1_shift, int input2_multiplier,
                 int input2_shift, int output_multiplier, int output_shift, int output_offset,
                 int act_min, int act_max, size, stride1, stride2):
        cdef int d, isa = ec_current_isa()
        if left_shift != 20:
            raise ValueError(f"ADD: left_shift {left_shift}; the int8 kernel is written for 20")
        if not 1 <= len(size) <= EC_MAX_DIMS or not len(size) == len(stride1) == len(stride2):
            raise ValueError(f"ADD: a broadcast walk of {len(size)} dimensions")
        if ec_add_prepare(&self.k, input1_offset, input2_offset, input1_multiplier,
                          input1_shift, input2_multiplier, input2_shift, output_multiplier,
                          output_shift, output_offset, act_min, act_max) != 0:
            raise ValueError("ADD: neither input has multiplier 2^30 and shift 0; "
                             "make_add_params gives one to the input of the larger scale")
        self.run = ec_add_run_for(isa)
        self.isa = ec_isa_names[isa].decode()
        self.rank = len(size)
        self.n1 = self.n2 = self.n_out = 1
        for d in range(self.rank):
            self.size[d], self.stride1[d], self.stride2[d] = size[d], stride1[d], stride2[d]
            self.n_out *= size[d]
            self.n1 *= size[d] if stride1[d] else 1
            self.n2 *= size[d] if stride2[d] else 1

    def __call__(self, const int8_t[::1] x1, const int8_t[::1] x2, int8_t[::1] out):
        if (x1.shape[0], x2.shape[0], out.shape[0]) != (self.n1, self.n2, self.n_out):
            raise ValueError(f"ADD: sizes {(x1.shape[0], x2.shape[0], out.shape[0])}, bound "
                             f"for {(self.n1, self.n2, self.n_out)}")
        with nogil:
            ec_add_s8(self.run, &x1[0], &x2[0], &out[0], self.rank, self.size, self.stride1,
                      self.stride2, &self.k, _num_threads)


def mean_s8(const int8_t[:, :, ::1] x, int multiplier, int shift, int input_offset,
            int output_offset, int policy, float scale, float bias, int8_t[::1] out):
    """x (H, W, C) -> out (C,); count = H * W; on the current ISA path. policy: EC_ROUND_DOUBLE
    (multiplier, shift, offsets) or EC_ROUND_FP32 (scale, bias: float32 values)."""
    cdef int isa = ec_current_isa()
    with nogil:
        ec_mean_s8(isa, &x[0, 0, 0], x.shape[0] * x.shape[1], x.shape[2], multiplier, shift,
                   input_offset, output_offset, policy, scale, bias, &out[0])


cdef enum:
    CONCAT_GROUP = 64  # inputs joined per pass: their pointers sit in a stack array


def concat_s8(inputs, copies, Py_ssize_t outer, int8_t[::1] out):
    """Input i (flat) is ``outer`` runs of copies[i] bytes; out row o is every input's run o.
    Row by row (the output is written once, in order), up to 64 inputs at a time."""
    cdef const int8_t* ptrs[CONCAT_GROUP]
    cdef Py_ssize_t sizes[CONCAT_GROUP]
    cdef const int8_t[::1] x
    cdef Py_ssize_t row = sum(copies), offset = 0, g0, n, i, o
    cdef int8_t* dst
    for g0 in range(0, len(inputs), CONCAT_GROUP):
        n = min(CONCAT_GROUP, len(inputs) - g0)
        for i in range(n):
            x = inputs[g0 + i]
            sizes[i] = copies[g0 + i]
            ptrs[i] = &x[0]  # the list keeps every input alive
        with nogil:
            for o in range(outer):
                dst = &out[0] + o * row + offset
                for i in range(n):
                    memcpy(dst, ptrs[i] + o * sizes[i], sizes[i])
                    dst += sizes[i]
        for i in range(n):
            offset += sizes[i]
