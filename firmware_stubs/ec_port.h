/* edgecnn platform hooks: everything the model test program needs from the platform.
 *
 * ec_port_host.c implements them with stdio and clock() for a desktop build; ec_port_semihost.c
 * with Arm semihosting (bkpt 0xAB) and SysTick for Cortex-M under QEMU or a debugger. Port to a
 * board by writing these few functions; the model and kernels call none of them (a model built
 * with EC_PROFILE=1 calls ec_port_ticks after each layer).
 */
#ifndef EDGECNN_PORT_H
#define EDGECNN_PORT_H

#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define EC_ALIGN(n) __attribute__((aligned(n)))
#define EC_NORETURN __attribute__((noreturn))
#else
#define EC_ALIGN(n)
#define EC_NORETURN
#endif

/* Open a file of input records for reading; a handle >= 0, or -1. */
int ec_port_open(const char *path);
/* Read up to n bytes; returns how many were read (fewer than n only at the end). */
int32_t ec_port_read(int handle, void *buf, int32_t n);
void ec_port_close(int handle);
/* Text to standard output (the results) and a line to the log (errors). */
void ec_port_write(const char *text, int32_t n);
void ec_port_log(const char *line);
/* A free-running counter: host microseconds; on Cortex-M the DWT cycle counter where the core
 * has one that counts (M3 and up on real silicon), else SysTick ticks of the core clock (call at
 * least once per 2^24 ticks), which under QEMU -icount shift=0 are instructions * core Hz / 1e9.
 * ec_port_timer_start() resets it to 0; ec_port_tick_unit() names the unit. */
void ec_port_timer_start(void);
uint32_t ec_port_ticks(void);
const char *ec_port_tick_unit(void);
EC_NORETURN void ec_port_exit(int status);

#endif /* EDGECNN_PORT_H */
