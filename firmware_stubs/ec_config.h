/* Which rounding policies the kernels compile besides double (fixedpoint.h): 1 compiles a policy,
 * 0 leaves its code out. This default compiles all of them; edgecnn export-c writes its own copy
 * into each generated project with only the policies that model's layers use, so a core without
 * a double-precision FPU links no soft-float it does not need. A layer must never carry a policy
 * its project leaves out (export-c writes the layers and this file together).
 */
#ifndef EDGECNN_CONFIG_H
#define EDGECNN_CONFIG_H

#define EC_ROUND_F64_USED 1
#define EC_ROUND_SINGLE_USED 1
#define EC_ROUND_FP32_USED 1
#define EC_ROUND_F64_INT_USED 1

#endif /* EDGECNN_CONFIG_H */
