/* The pixel kernels (Sources/CPixelKernels) against their plain-C
 * definition, on every byte value and on row lengths around the vector
 * steps. Built for the machine (SSE2 on x86-64) and for arm64 (NEON, run
 * under qemu-aarch64) by `make test-kernels`; exits 1 on the first
 * difference it prints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pixel_kernels.h"

static unsigned clamp(unsigned s, unsigned lo, unsigned hi) { return s < lo ? lo : s > hi ? hi : s; }

int main(void) {
    static uint8_t src[4 * 1024], y[2 * 1024 + 16], u[1024 + 16], v[1024 + 16];
    unsigned seed = 12345;
    const size_t lengths[] = {0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 960, 1024};
    for (size_t l = 0; l < sizeof lengths / sizeof *lengths; l++) {
        size_t pairs = lengths[l];
        for (int round = 0; round < 50; round++) {
            for (size_t i = 0; i < pairs * 4; i++) {
                seed = seed * 1103515245u + 12345u;
                /* Every byte value appears: the first round walks them in order. */
                src[i] = round == 0 ? (uint8_t)i : (uint8_t)(seed >> 16);
            }
            memset(y, 0xAA, sizeof y); memset(u, 0xAA, sizeof u); memset(v, 0xAA, sizeof v);
            if (ts_yuyv_expand_row(src, pairs, y, u, v) != pairs) { puts("wrong count"); return 1; }
            for (size_t i = 0; i < pairs; i++) {
                const uint8_t *p = src + i * 4;
                unsigned ey0 = ((clamp(p[0], 16, 235) - 16) * 298 + 128) >> 8;
                unsigned ey1 = ((clamp(p[2], 16, 235) - 16) * 298 + 128) >> 8;
                unsigned eu = ((clamp(p[1], 16, 240) - 16) * 292 + 64) >> 8;
                unsigned ev = ((clamp(p[3], 16, 240) - 16) * 292 + 64) >> 8;
                if (y[2 * i] != ey0 || y[2 * i + 1] != ey1 || u[i] != eu || v[i] != ev) {
                    printf("pairs %zu round %d pair %zu: got Y %u %u U %u V %u, want %u %u %u %u (from %u %u %u %u)\n", pairs, round, i,
                           y[2 * i], y[2 * i + 1], u[i], v[i], ey0, ey1, eu, ev, p[0], p[2], p[1], p[3]);
                    return 1;
                }
            }
            if (y[2 * pairs] != 0xAA || u[pairs] != 0xAA || v[pairs] != 0xAA) { printf("pairs %zu: wrote past the row\n", pairs); return 1; }
        }
    }
#if defined(__SSE2__)
    puts("pixel kernels: SSE2 path matches the definition");
#elif defined(__ARM_NEON)
    puts("pixel kernels: NEON path matches the definition");
#else
    puts("pixel kernels: plain C path matches the definition");
#endif
    return 0;
}
