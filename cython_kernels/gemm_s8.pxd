# Declarations of gemm_s8.h (the packed int8 GEMM behind the bound conv and dense kernels),
# shared by conv.pyx and fully_connected.pyx so the struct layouts are written down once.
from libc.stdint cimport int8_t, int32_t, int64_t


cdef extern from "gemm_s8.h" nogil:
    int EC_ISA_COUNT
    int EC_ISA_AVX512VNNI
    int EC_ISA_AVX512AMX
    int EC_POOL_MAX
    ctypedef void (*ec_pool_run_fn)(void (*fn)(void*, int, int), void* ctx, int total, int nthreads)
    void ec_pool_run_local(void (*fn)(void*, int, int), void* ctx, int total, int nthreads)
    void ec_pool_adopt(ec_pool_run_fn run)
    const char* ec_isa_names[]
    ctypedef struct ec_layout:
        int mr, nr, kstep, a_bytes, u8
    const ec_layout ec_layouts[]
    ctypedef struct ec_requant:
        const int32_t* bias
        const int32_t* m0
        const int32_t* shift
        const int32_t* left
        const int32_t* right
        const double* real_scale
        int policy, out_off, act_min, act_max
    ctypedef struct ec_conv_plan:
        int isa
        ec_layout L
        int h, w, cin, oh, ow, cout, kh, kw, sh, sw, dh, dw, pt, pl
        int k, kp, npanels
        int direct, nseg, seg, segp, hp, wp
        int pad_a
        const void* b
        ec_requant rq
        void* padded
        void* scratch
        int max_threads
        void* amx_a
    ctypedef struct ec_fc_plan:
        int isa
        int n, o
        const int8_t* w
        ec_requant rq
        void* xs
    int ec_isa_supported(int isa)
    const char* ec_amx_missing()
    int ec_current_isa()
    int ec_force_isa(const char* name)
    int ec_conv_isa_for(int isa, int cout)
    ec_layout ec_layout_for(int isa, int cout)
    void ec_conv_geometry(ec_conv_plan* p)
    size_t ec_packed_b_bytes(const ec_conv_plan* p)
    size_t ec_conv_padded_bytes(const ec_conv_plan* p)
    size_t ec_conv_scratch_bytes(const ec_conv_plan* p)
    void ec_pack_b(const ec_conv_plan* p, const int8_t* w, void* dst, int64_t* sums)
    size_t ec_amx_rq_bytes(const ec_conv_plan* p)
    void ec_amx_bind(ec_conv_plan* p, void* mem)
    size_t ec_amx_a_bytes(const ec_conv_plan* p)
    void ec_conv_run(const ec_conv_plan* p, const int8_t* x, int8_t* out, int nthreads)
    void ec_conv_run_batch(const ec_conv_plan* p, const int8_t* x, int nb, int8_t* out,
                           int nthreads)
    int ec_fc_vnni(int isa)
    int ec_fc_pad_a(int isa, int zp)
    void ec_fc_run(const ec_fc_plan* p, const int8_t* x, int8_t* out, int nthreads)
    size_t ec_fc_batch_scratch_bytes(int n, int nb)
    void ec_fc_run_batch(const ec_fc_plan* p, const int8_t* x, int nb, int8_t* out,
                         void* scratch, int nthreads)
