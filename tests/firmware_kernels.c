/* Runs the firmware kernels (firmware_stubs/ec_conv.c, ec_depthwise.c, ec_fully_connected.c,
 * ec_pool.c, ec_add.c, ec_mean.c) on cases read from a file and prints each output as one line
 * of hex bytes, so
 * tests/test_firmware_kernels.py can compare every path (plain C on the host, DSP on
 * Cortex-M4/M7/M33, Helium on Cortex-M55, under QEMU with semihosting) with the NumPy
 * reference, bit for bit.
 *
 *   firmware_kernels [cases.bin]
 *
 * cases.bin: little-endian int32 words. Header: 0x54434b45 ("EKCT"), number of cases. Each case:
 * op (1 conv, 2 fully connected, 3 max pool, 4 average pool, 5 depthwise, 6 add, 7 mean), then
 *   conv: in h w c, out h w c, kh, kw, the 7 ec_conv_params_t fields, requant, weights, bias,
 *         scratch bytes, input;
 *   fc:   n_in, n_out, requant, weights, bias, input;
 *   pool: in h w c, out h w c, the 8 ec_pool_params_t fields, input;
 *   depthwise: in h w c, out h w c, kh, kw, the 8 ec_depthwise_params_t fields, requant,
 *         weights (int16), bias, wsum, rq2 (0 bytes: NULL), input;
 *   add:  rank, rank sizes, rank strides of x1, of x2, the 12 ec_add_params_t fields, in place
 *         (0 no, 1 out is x1, 2 out is x2), x1, x2;
 *   mean: in h w c, the 8 ec_mean_params_t fields (scale and bias as float32 bits), input;
 * requant: policy, output_offset, act_min, act_max, rq_per_channel, n, then n multipliers, n
 * shifts, a zero word where needed to bring the next to a multiple of 8 bytes from the file's
 * start, and n doubles; an array: its byte count, then the bytes padded to 4.
 * Scratch and output get 16 guard bytes each; a kernel that writes past them prints
 * "overflow" for that case. Exit 0, or 1 on a malformed file.
 */
#include <stdint.h>
#include <string.h>

#include "ec_kernels.h"
#include "ec_port.h"

#define POOL_BYTES (320 * 1024)
#define GUARD 16

static int32_t ec_pool[POOL_BYTES / 4] EC_ALIGN(8); /* the file, then scratch and outputs */
static const int32_t *rd, *rd_end;
static int bad;

static int32_t next(void) {
    if (rd >= rd_end) {
        bad = 1;
        return 0;
    }
    return *rd++;
}

static float next_float(void) {
    const int32_t bits = next();
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* An array in the file: returns its bytes in place (4-byte aligned), sets *n. */
static const void *array(int32_t *n) {
    const void *p;
    *n = next();
    p = rd;
    if (*n < 0 || (*n + 3) / 4 > rd_end - rd) {
        bad = 1;
        return rd;
    }
    rd += (*n + 3) / 4;
    return p;
}

static void read_dims(ec_dims_t *d) {
    d->h = next();
    d->w = next();
    d->c = next();
}

static void read_requant(ec_requant_t *rq, int32_t *per_channel) {
    int32_t n;
    rq->policy = next();
    rq->output_offset = next();
    rq->act_min = next();
    rq->act_max = next();
    *per_channel = next();
    n = next();
    if (n < 1 || 4 * n + 1 > rd_end - rd) {
        bad = 1;
        return;
    }
    rq->multiplier = rd;
    rq->shift = rd + n;
    rd += 2 * n;
    rd += (rd - ec_pool) & 1;
    rq->real_scale = (const double *)(const void *)rd;
    rd += 2 * n;
}

static char line[80];
static int32_t line_len;

static void put(const char *s, int32_t n) {
    if (line_len + n > (int32_t)sizeof line) {
        ec_port_write(line, line_len);
        line_len = 0;
    }
    memcpy(line + line_len, s, (size_t)n);
    line_len += n;
}

static void print_bytes(const int8_t *o, int32_t n, int overflow) {
    int32_t i;
    for (i = 0; i < n; i++) {
        char hex[2];
        hex[0] = "0123456789abcdef"[((uint8_t)o[i]) >> 4];
        hex[1] = "0123456789abcdef"[((uint8_t)o[i]) & 15];
        put(hex, 2);
    }
    if (overflow) put(" overflow", 9);
    put("\n", 1);
    ec_port_write(line, line_len);
    line_len = 0;
}

/* Guard bytes after a buffer of n bytes: set, then checked. */
static void guard_set(int8_t *p, int32_t n) { memset(p + n, 0x5a, GUARD); }

static int guard_broken(const int8_t *p, int32_t n) {
    int32_t i;
    for (i = 0; i < GUARD; i++)
        if (p[n + i] != 0x5a) return 1;
    return 0;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "cases.bin";
    int handle = ec_port_open(path);
    int32_t got, cases, k;
    int8_t *free_mem;
    if (handle < 0) {
        ec_port_log("firmware_kernels: cannot open the case file");
        return 1;
    }
    got = ec_port_read(handle, ec_pool, POOL_BYTES);
    ec_port_close(handle);
    rd = ec_pool;
    rd_end = ec_pool + got / 4;
    free_mem = (int8_t *)(ec_pool + (got + 3) / 4);
    if (next() != 0x54434b45) bad = 1;
    cases = next();
    for (k = 0; k < cases && !bad; k++) {
        const int32_t op = next();
        int8_t *out = free_mem;
        int32_t n_out = 0, n, overflow = 0;
        if (op == 1) {
            ec_conv_layer_t l;
            const int8_t *x;
            int32_t scratch_bytes;
            read_dims(&l.in);
            read_dims(&l.out);
            l.kh = next();
            l.kw = next();
            l.p.stride_h = next(), l.p.stride_w = next(), l.p.pad_top = next();
            l.p.pad_left = next(), l.p.dilation_h = next(), l.p.dilation_w = next();
            l.p.input_offset = next();
            read_requant(&l.rq, &l.rq_per_channel);
            l.weight = array(&n);
            l.bias = array(&n);
            int8_t *const scratch = free_mem;
            scratch_bytes = next();
            out = scratch + ((scratch_bytes + GUARD + 3) & ~3);
            x = array(&n);
            n_out = l.out.h * l.out.w * l.out.c;
            if (bad || out + n_out + GUARD > (int8_t *)ec_pool + POOL_BYTES) break;
            guard_set(scratch, scratch_bytes);
            guard_set(out, n_out);
            ec_conv2d_s8(&l, x, out, scratch);
            overflow = guard_broken(scratch, scratch_bytes);
        } else if (op == 2) {
            ec_fc_layer_t l;
            const int8_t *x;
            l.n_in = next();
            l.n_out = next();
            read_requant(&l.rq, &l.rq_per_channel);
            l.weight = array(&n);
            l.bias = array(&n);
            x = array(&n);
            n_out = l.n_out;
            if (bad || out + n_out + GUARD > (int8_t *)ec_pool + POOL_BYTES) break;
            guard_set(out, n_out);
            ec_fully_connected_s8(&l, x, out);
        } else if (op == 3 || op == 4) {
            ec_dims_t in, od;
            ec_pool_params_t p;
            const int8_t *x;
            read_dims(&in);
            read_dims(&od);
            p.filter_h = next(), p.filter_w = next(), p.stride_h = next(), p.stride_w = next();
            p.pad_top = next(), p.pad_left = next(), p.act_min = next(), p.act_max = next();
            x = array(&n);
            n_out = od.h * od.w * od.c;
            if (bad || out + n_out + GUARD > (int8_t *)ec_pool + POOL_BYTES) break;
            guard_set(out, n_out);
            if (op == 3)
                ec_max_pool_s8(x, &in, &p, out, &od);
            else
                ec_avg_pool_s8(x, &in, &p, out, &od);
        } else if (op == 5) {
            ec_dw_layer_t l;
            const int8_t *x;
            read_dims(&l.in);
            read_dims(&l.out);
            l.kh = next();
            l.kw = next();
            l.p.stride_h = next(), l.p.stride_w = next(), l.p.pad_top = next();
            l.p.pad_left = next(), l.p.dilation_h = next(), l.p.dilation_w = next();
            l.p.depth_multiplier = next(), l.p.input_offset = next();
            read_requant(&l.rq, &l.rq_per_channel);
            l.weight = array(&n);
            l.bias = array(&n);
            l.wsum = array(&n);
            l.rq2 = array(&n);
            if (n == 0) l.rq2 = 0;
            x = array(&n);
            n_out = l.out.h * l.out.w * l.out.c;
            if (bad || out + n_out + GUARD > (int8_t *)ec_pool + POOL_BYTES) break;
            guard_set(out, n_out);
            ec_depthwise_conv2d_s8(&l, x, out);
        } else if (op == 6) {
            ec_broadcast_t b;
            ec_add_params_t p;
            const int8_t *x1, *x2;
            int32_t d, inplace, n2;
            b.rank = next();
            if (b.rank < 1 || b.rank > EC_MAX_DIMS) {
                bad = 1;
                break;
            }
            for (d = 0; d < b.rank; d++) b.size[d] = next();
            for (d = 0; d < b.rank; d++) b.stride1[d] = next();
            for (d = 0; d < b.rank; d++) b.stride2[d] = next();
            p.left_shift = next(), p.input1_offset = next(), p.input2_offset = next();
            p.input1_multiplier = next(), p.input1_shift = next();
            p.input2_multiplier = next(), p.input2_shift = next();
            p.output_multiplier = next(), p.output_shift = next(), p.output_offset = next();
            p.act_min = next(), p.act_max = next();
            inplace = next();
            x1 = array(&n);
            x2 = array(&n2);
            for (n_out = 1, d = 0; d < b.rank; d++) n_out *= b.size[d];
            if (bad || out + n_out + GUARD > (int8_t *)ec_pool + POOL_BYTES) break;
            guard_set(out, n_out);
            if (inplace == 1 && n == n_out) {
                memcpy(out, x1, (size_t)n);
                ec_add_s8(out, x2, &b, &p, out);
            } else if (inplace == 2 && n2 == n_out) {
                memcpy(out, x2, (size_t)n2);
                ec_add_s8(x1, out, &b, &p, out);
            } else {
                ec_add_s8(x1, x2, &b, &p, out);
            }
        } else if (op == 7) {
            ec_dims_t in;
            ec_mean_params_t p;
            const int8_t *x;
            read_dims(&in);
            p.multiplier = next(), p.shift = next(), p.input_offset = next();
            p.output_offset = next(), p.count = next(), p.policy = next();
            p.scale = next_float(), p.bias = next_float();
            x = array(&n);
            n_out = in.c;
            if (bad || out + n_out + GUARD > (int8_t *)ec_pool + POOL_BYTES) break;
            guard_set(out, n_out);
            ec_mean_s8(x, &in, &p, out);
        } else {
            bad = 1;
            break;
        }
        print_bytes(out, n_out, overflow || guard_broken(out, n_out));
    }
    if (bad || k != cases) {
        ec_port_log("firmware_kernels: malformed case file");
        return 1;
    }
    return 0;
}
