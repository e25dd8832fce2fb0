/* Platform hooks for Cortex-M over Arm semihosting (QEMU -semihosting, or a debug probe).
 *
 * Files and the console go through bkpt 0xAB (SYS_OPEN, SYS_READ, SYS_WRITE, SYS_CLOSE); the
 * exit status through SYS_EXIT_EXTENDED, so QEMU exits with main's return value. Time is the DWT
 * cycle counter on Armv7-M / Armv8-M mainline cores whose CYCCNT counts (real silicon; QEMU's
 * reads 0), else the 24-bit SysTick on the core clock, widened to 32 bits here; under QEMU
 * -icount shift=0 every instruction advances the virtual clock by 1 ns, so ticks * (1e9 / f_core)
 * = instructions.
 */
#include <string.h>

#include "ec_port.h"

#define SYS_OPEN 0x01
#define SYS_CLOSE 0x02
#define SYS_WRITE 0x05
#define SYS_READ 0x06
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)

#if defined(__ARM_ARCH) && __ARM_ARCH >= 7 && !defined(__ARM_ARCH_8M_BASE__)
#define EC_DWT 1 /* the core may have a cycle counter: probed in ec_port_timer_start */
#endif

static int32_t ec_semihost(int32_t op, void *arg) {
    register int32_t r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static int ec_open_mode(const char *path, uint32_t mode) {
    uint32_t args[3];
    args[0] = (uint32_t)(uintptr_t)path;
    args[1] = mode;
    args[2] = (uint32_t)strlen(path);
    return (int)ec_semihost(SYS_OPEN, args);
}

int ec_port_open(const char *path) { return ec_open_mode(path, 1u /* "rb" */); }

int32_t ec_port_read(int handle, void *buf, int32_t n) {
    uint32_t args[3];
    args[0] = (uint32_t)handle;
    args[1] = (uint32_t)(uintptr_t)buf;
    args[2] = (uint32_t)n;
    return n - ec_semihost(SYS_READ, args); /* SYS_READ answers the bytes NOT read */
}

void ec_port_close(int handle) {
    uint32_t arg = (uint32_t)handle;
    ec_semihost(SYS_CLOSE, &arg);
}

static void ec_write_handle(int *handle, const char *name, uint32_t mode, const char *text,
                            int32_t n) {
    uint32_t args[3];
    if (*handle < 0) *handle = ec_open_mode(name, mode);
    args[0] = (uint32_t)*handle;
    args[1] = (uint32_t)(uintptr_t)text;
    args[2] = (uint32_t)n;
    ec_semihost(SYS_WRITE, args);
}

static int ec_stdout = -1, ec_stderr = -1;

void ec_port_write(const char *text, int32_t n) {
    ec_write_handle(&ec_stdout, ":tt", 4u /* "w": stdout */, text, n);
}

void ec_port_log(const char *line) {
    ec_write_handle(&ec_stderr, ":tt", 8u /* "a": stderr */, line, (int32_t)strlen(line));
    ec_write_handle(&ec_stderr, ":tt", 8u, "\n", 1);
}

static uint32_t ec_ticks, ec_last;

/* CYCCNTENA reads back 1 only where the cycle counter exists (RAZ/WI without one; QEMU's DWT
 * reads 0 throughout). */
static int ec_use_dwt(void) {
#if defined(EC_DWT)
    return (DWT_CTRL & 1u) != 0;
#else
    return 0;
#endif
}

void ec_port_timer_start(void) {
#if defined(EC_DWT)
    DEMCR |= 1u << 24; /* TRCENA: the DWT on */
    DWT_CTRL |= 1u;    /* CYCCNTENA */
    DWT_CYCCNT = 0;
    if (ec_use_dwt()) return;
#endif
    SYST_CSR = 0;
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0;          /* any write clears the counter; it reloads on the next tick */
    SYST_CSR = 5u;         /* enable, core clock, no interrupt */
    ec_ticks = 0;
    ec_last = SYST_CVR;
}

uint32_t ec_port_ticks(void) {
    uint32_t now;
    if (ec_use_dwt()) return DWT_CYCCNT;
    now = SYST_CVR; /* counts down */
    ec_ticks += (ec_last - now) & 0x00FFFFFFu;
    ec_last = now;
    return ec_ticks;
}

const char *ec_port_tick_unit(void) {
    return ec_use_dwt()
               ? "core cycles (DWT)"
               : "SysTick ticks of the core clock (QEMU -icount: x 1e9 / Hz = instructions)";
}

void ec_port_exit(int status) {
    uint32_t args[2];
    args[0] = ADP_STOPPED_APPLICATION_EXIT;
    args[1] = (uint32_t)status;
    for (;;) ec_semihost(SYS_EXIT_EXTENDED, args);
}
