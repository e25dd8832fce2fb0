/* Minimal Cortex-M startup (ARMv6-M to ARMv8.1-M): the vector table and a reset handler that
 * copies .data from flash, zeroes .bss, turns on the FPU where the build uses one, calls main and
 * hands its return value to the semihosting exit. Every fault ends the program with status 3.
 * The linker scripts in boards/ place .vectors at the address the core boots from.
 */
#include <stdint.h>

#include "ec_port.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(int argc, char **argv);

void ec_reset_handler(void);
void ec_fault_handler(void);

void ec_reset_handler(void) {
    const uint32_t *src = &_sidata;
    uint32_t *dst;
    for (dst = &_sdata; dst < &_edata;) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
#if defined(__ARM_FP)
    /* CPACR: full access to CP10 and CP11 (the FPU) before any floating-point instruction */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    ec_port_exit(main(0, 0));
}

void ec_fault_handler(void) { ec_port_exit(3); }

typedef void (*ec_vector_t)(void);

__attribute__((section(".vectors"), used)) const ec_vector_t ec_vectors[16] = {
    (ec_vector_t)(uintptr_t)&_estack, ec_reset_handler, ec_fault_handler, ec_fault_handler,
    ec_fault_handler, ec_fault_handler, ec_fault_handler, ec_fault_handler,
    ec_fault_handler, ec_fault_handler, ec_fault_handler, ec_fault_handler,
    ec_fault_handler, ec_fault_handler, ec_fault_handler, ec_fault_handler};
