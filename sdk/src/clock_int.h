/*
 * clock_int.h: the clocks keel reads, in milliseconds.
 */
#ifndef KEEL_CLOCK_INT_H
#define KEEL_CLOCK_INT_H

#include <stdint.h>
#include <time.h>

/* Milliseconds on clock clk: CLOCK_MONOTONIC for deadlines,
 * CLOCK_REALTIME for timestamps. */
static inline int64_t keel__clock_ms(clockid_t clk)
{
        struct timespec ts;
        clock_gettime(clk, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
