#ifndef TELESTATION_CGPIOD_SHIM_H
#define TELESTATION_CGPIOD_SHIM_H
/* libgpiod 1.6 (Debian 12, Raspberry Pi OS bookworm). */
#include <gpiod.h>
#include <time.h>

/* GPIOD_BIT() flags are enum constants built from a macro; named here for Swift. */
static const int TS_GPIOD_FLAG_ACTIVE_LOW = GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW;
static const int TS_GPIOD_FLAG_BIAS_PULL_UP = GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP;
static const int TS_GPIOD_FLAG_BIAS_PULL_DOWN = GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN;
static const int TS_GPIOD_EVENT_RISING = GPIOD_LINE_EVENT_RISING_EDGE;
static const int TS_GPIOD_EVENT_FALLING = GPIOD_LINE_EVENT_FALLING_EDGE;

/* Waits up to `ms` milliseconds for an edge; 1 = event ready, 0 = timeout, -1 = error. */
static inline int ts_gpiod_wait(struct gpiod_line *line, long ms) {
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    return gpiod_line_event_wait(line, &ts);
}
#endif
