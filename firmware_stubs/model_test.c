/* Runs the generated model over a file of input records and prints its outputs for each.
 *
 *   model_test [in.bin]     (default in.bin; on Cortex-M the file is read over semihosting)
 *
 * in.bin holds records of EC_MODEL_INPUT_BYTES bytes each (the input tensor, NHWC, int8 or
 * little-endian float32). For each record the program prints one line per model output, in the
 * model's output order (ec_model_outputs[k]): the tensor as decimal int8 values, or for a
 * float32 output the IEEE bit patterns in hex (exact). A last line "# inferences N ticks T unit U"
 * gives the port's timer total over the N invocations and its unit (ec_port_tick_unit); built
 * with EC_PROFILE=1, lines "# layer K ticks T name" follow, one per layer. Exit status 0, or 1
 * on a bad input file, 2 when the model and the kernels disagree on the format version.
 */
#include <stdint.h>
#include <string.h>

#include "ec_port.h"
#include "model.h"

static char ec_line[128];
static int32_t ec_line_len;

static void ec_flush(void) {
    ec_port_write(ec_line, ec_line_len);
    ec_line_len = 0;
}

static void ec_put(const char *s, int32_t n) {
    if (ec_line_len + n > (int32_t)sizeof(ec_line)) ec_flush();
    memcpy(ec_line + ec_line_len, s, (size_t)n);
    ec_line_len += n;
}

static void ec_put_uint(uint32_t v, uint32_t base, int min_digits) {
    char tmp[12];
    int k = 0;
    do {
        tmp[k++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v || k < min_digits);
    while (k) ec_put(&tmp[--k], 1);
}

static void ec_put_int(int32_t v) {
    if (v < 0) ec_put("-", 1);
    ec_put_uint(v < 0 ? (uint32_t)0 - (uint32_t)v : (uint32_t)v, 10, 1);
}

static void ec_print_outputs(void) {
    int32_t k, i;
    for (k = 0; k < EC_MODEL_NUM_OUTPUTS; k++) {
        const ec_model_output_t *out = &ec_model_outputs[k];
        for (i = 0; i < out->count; i++) {
            if (i) ec_put(" ", 1);
            if (out->is_float) {
                uint32_t bits; /* the float's bytes as they are: no float arithmetic */
                memcpy(&bits, (const uint8_t *)out->data + 4 * i, 4);
                ec_put("0x", 2);
                ec_put_uint(bits, 16, 8);
            } else {
                ec_put_int(((const int8_t *)out->data)[i]);
            }
        }
        ec_put("\n", 1);
        ec_flush();
    }
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "in.bin";
    uint32_t ticks = 0;
    int32_t count = 0;
    int handle;
    if (ec_model_init() != 0) {
        ec_port_log("model_test: the model was generated for another kernel format version");
        return 2;
    }
    handle = ec_port_open(path);
    if (handle < 0) {
        ec_port_log("model_test: cannot open the input file (give records of the input tensor)");
        return 1;
    }
    for (;;) {
        int32_t got = ec_port_read(handle, ec_model_input(), EC_MODEL_INPUT_BYTES);
        uint32_t t0;
        if (got == 0) break;
        if (got != EC_MODEL_INPUT_BYTES) {
            ec_port_log("model_test: the input file is not a whole number of input records");
            ec_port_close(handle);
            return 1;
        }
        ec_port_timer_start();
        t0 = ec_port_ticks();
        ec_model_invoke();
        ticks += ec_port_ticks() - t0;
        ec_print_outputs();
        count++;
    }
    ec_port_close(handle);
    ec_put("# inferences ", 13);
    ec_put_int(count);
    ec_put(" ticks ", 7);
    ec_put_uint(ticks, 10, 1);
    ec_put(" unit ", 6);
    ec_flush();
    ec_port_write(ec_port_tick_unit(), (int32_t)strlen(ec_port_tick_unit()));
    ec_put("\n", 1);
#if EC_PROFILE
    {
        int32_t k;
        for (k = 0; k < EC_MODEL_LAYER_COUNT; k++) {
            ec_put("# layer ", 8);
            ec_put_int(k);
            ec_put(" ticks ", 7);
            ec_put_uint(ec_model_layer_ticks[k], 10, 1);
            ec_put(" ", 1);
            ec_flush();
            ec_port_write(ec_model_layer_names[k], (int32_t)strlen(ec_model_layer_names[k]));
            ec_put("\n", 1);
        }
    }
#endif
    ec_flush();
    return 0;
}
