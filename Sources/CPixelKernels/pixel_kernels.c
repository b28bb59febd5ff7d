#include "pixel_kernels.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

static inline uint8_t luma(uint8_t s) {
    unsigned c = s < 16 ? 16 : s > 235 ? 235 : s;
    return (uint8_t)(((c - 16) * 298 + 128) >> 8);
}

static inline uint8_t chroma(uint8_t s) {
    unsigned c = s < 16 ? 16 : s > 240 ? 240 : s;
    return (uint8_t)(((c - 16) * 292 + 64) >> 8);
}

#if defined(__ARM_NEON) && !defined(__SSE2__)
/// (x * k + r) >> 8 for 16 bytes, in two halves of 16-bit lanes.
static inline uint8x16_t stretch(uint8x16_t x, uint16_t k, uint16_t r) {
    uint8x8_t lo = vshrn_n_u16(vmlaq_n_u16(vdupq_n_u16(r), vmovl_u8(vget_low_u8(x)), k), 8);
    uint8x8_t hi = vshrn_n_u16(vmlaq_n_u16(vdupq_n_u16(r), vmovl_u8(vget_high_u8(x)), k), 8);
    return vcombine_u8(lo, hi);
}
#endif

size_t ts_yuyv_expand_row(const uint8_t *src, size_t pairs, uint8_t *y, uint8_t *u, uint8_t *v) {
    size_t i = 0;
#if defined(__SSE2__)
    // 8 pairs (16 pixels, 32 bytes) per step. Clamp in bytes (SSE2 has
    // unsigned byte min/max), then work in 16-bit lanes: Y in the low byte
    // of each lane, U or V in the high byte.
    const __m128i low = _mm_set1_epi8(16);
    const __m128i high = _mm_set1_epi16((short)(240 << 8 | 235));
    const __m128i mask = _mm_set1_epi16(0xFF);
    const __m128i ly = _mm_set1_epi16(298), ry = _mm_set1_epi16(128);
    const __m128i lc = _mm_set1_epi16(292), rc = _mm_set1_epi16(64);
    for (; i + 8 <= pairs; i += 8) {
        __m128i a = _mm_loadu_si128((const __m128i *)(src + i * 4));
        __m128i b = _mm_loadu_si128((const __m128i *)(src + i * 4 + 16));
        a = _mm_sub_epi8(_mm_min_epu8(_mm_max_epu8(a, low), high), low);
        b = _mm_sub_epi8(_mm_min_epu8(_mm_max_epu8(b, low), high), low);
        __m128i ya = _mm_srli_epi16(_mm_add_epi16(_mm_mullo_epi16(_mm_and_si128(a, mask), ly), ry), 8);
        __m128i yb = _mm_srli_epi16(_mm_add_epi16(_mm_mullo_epi16(_mm_and_si128(b, mask), ly), ry), 8);
        __m128i ca = _mm_srli_epi16(_mm_add_epi16(_mm_mullo_epi16(_mm_srli_epi16(a, 8), lc), rc), 8);
        __m128i cb = _mm_srli_epi16(_mm_add_epi16(_mm_mullo_epi16(_mm_srli_epi16(b, 8), lc), rc), 8);
        _mm_storeu_si128((__m128i *)(y + i * 2), _mm_packus_epi16(ya, yb));
        // U V U V … (16 bytes) → U (8) and V (8).
        __m128i c = _mm_packus_epi16(ca, cb);
        __m128i us = _mm_and_si128(c, mask), vs = _mm_srli_epi16(c, 8);
        _mm_storel_epi64((__m128i *)(u + i), _mm_packus_epi16(us, us));
        _mm_storel_epi64((__m128i *)(v + i), _mm_packus_epi16(vs, vs));
    }
#elif defined(__ARM_NEON)
    // 16 pairs per step: vld4 splits Y0 U Y1 V into four registers.
    const uint8x16_t low = vdupq_n_u8(16);
    for (; i + 16 <= pairs; i += 16) {
        uint8x16x4_t q = vld4q_u8(src + i * 4);
        uint8x16x2_t yy;
        yy.val[0] = stretch(vsubq_u8(vminq_u8(vmaxq_u8(q.val[0], low), vdupq_n_u8(235)), low), 298, 128);
        yy.val[1] = stretch(vsubq_u8(vminq_u8(vmaxq_u8(q.val[2], low), vdupq_n_u8(235)), low), 298, 128);
        vst2q_u8(y + i * 2, yy);
        vst1q_u8(u + i, stretch(vsubq_u8(vminq_u8(vmaxq_u8(q.val[1], low), vdupq_n_u8(240)), low), 292, 64));
        vst1q_u8(v + i, stretch(vsubq_u8(vminq_u8(vmaxq_u8(q.val[3], low), vdupq_n_u8(240)), low), 292, 64));
    }
#endif
    for (; i < pairs; i++) {
        const uint8_t *p = src + i * 4;
        y[i * 2] = luma(p[0]);
        u[i] = chroma(p[1]);
        y[i * 2 + 1] = luma(p[2]);
        v[i] = chroma(p[3]);
    }
    return pairs;
}
