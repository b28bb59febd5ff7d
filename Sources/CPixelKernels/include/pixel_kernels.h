#ifndef TELESTATION_PIXEL_KERNELS_H
#define TELESTATION_PIXEL_KERNELS_H
#include <stddef.h>
#include <stdint.h>

/// Splits `pairs` YUYV pixel pairs (4 bytes each) of limited range into Y
/// (2 per pair), U and V (1 each), stretched to full range:
/// Y' = ((clamp(Y, 16, 235) - 16) * 298 + 128) >> 8,
/// C' = ((clamp(C, 16, 240) - 16) * 292 + 64) >> 8.
/// SSE2 on x86-64, NEON on arm64, plain C elsewhere; the same bytes on all.
/// Returns how many pairs it did (all of them).
size_t ts_yuyv_expand_row(const uint8_t *src, size_t pairs, uint8_t *y, uint8_t *u, uint8_t *v);

#endif
