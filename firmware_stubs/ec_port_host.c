/* Platform hooks for a desktop build: stdio files, stdout/stderr, clock() in microseconds. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ec_port.h"

#define EC_MAX_FILES 4
static FILE *ec_files[EC_MAX_FILES];
static clock_t ec_t0;

int ec_port_open(const char *path) {
    int h;
    for (h = 0; h < EC_MAX_FILES; h++) {
        if (ec_files[h] == NULL) {
            ec_files[h] = fopen(path, "rb");
            return ec_files[h] ? h : -1;
        }
    }
    return -1;
}

int32_t ec_port_read(int handle, void *buf, int32_t n) {
    return (int32_t)fread(buf, 1, (size_t)n, ec_files[handle]);
}

void ec_port_close(int handle) {
    fclose(ec_files[handle]);
    ec_files[handle] = NULL;
}

void ec_port_write(const char *text, int32_t n) { fwrite(text, 1, (size_t)n, stdout); }

void ec_port_log(const char *line) { fprintf(stderr, "%s\n", line); }

void ec_port_timer_start(void) { ec_t0 = clock(); }

uint32_t ec_port_ticks(void) {
    return (uint32_t)((double)(clock() - ec_t0) * 1e6 / CLOCKS_PER_SEC);
}

const char *ec_port_tick_unit(void) { return "microseconds of CPU time (clock())"; }

void ec_port_exit(int status) {
    fflush(stdout);
    exit(status);
}
