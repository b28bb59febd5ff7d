#ifndef TELESTATION_CMALLOC_SHIM_H
#define TELESTATION_CMALLOC_SHIM_H
#include <malloc.h>

/* glibc's mallopt and its M_* parameters are in <malloc.h>, which Swift's
 * Glibc module does not include. */
static inline void ts_malloc_tune(int mmap_threshold, int arena_max) {
    mallopt(M_MMAP_THRESHOLD, mmap_threshold);
    mallopt(M_ARENA_MAX, arena_max);
}
/* Hands freed heap memory back to the system: after a burst of allocations
 * below the mmap threshold (libjxl's encoder), glibc otherwise keeps it. */
static inline void ts_malloc_trim(void) {
    malloc_trim(0);
}
#endif
