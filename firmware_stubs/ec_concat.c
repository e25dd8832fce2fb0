/* int8 CONCATENATION, the twin of edgecnn/reference/concat.py: a plain copy (LiteRT refuses int8
 * inputs whose scale or zero point differ from the output's). Each input is outer_size runs of
 * copy_sizes[i] bytes (its extent on the axis times the dimensions after it); output row o is
 * run o of every input in turn.
 */
#include <string.h>

#include "ec_kernels.h"

void ec_concat_s8(const int8_t *const *inputs, const int32_t *copy_sizes,
                  const ec_concat_params_t *p, int32_t outer_size, int8_t *out) {
    int32_t o, i;
    for (o = 0; o < outer_size; o++) {
        for (i = 0; i < p->inputs_count; i++) {
            memcpy(out, inputs[i] + o * copy_sizes[i], (size_t)copy_sizes[i]);
            out += copy_sizes[i];
        }
    }
}
