# The pixel kernels (Sources/CPixelKernels) against their plain-C definition
# (Tests/Kernels/kernel_check.c): built for this machine (SSE2 on x86-64),
# with the vector path compiled out, and for arm64 with NEON, the
# Raspberry Pi's path, run under qemu-aarch64. Seconds.
.PHONY: test-kernels
TEST_STAGES += test-kernels
APT_TEST += qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross

KERNEL_SRC := -I Sources/CPixelKernels/include Tests/Kernels/kernel_check.c Sources/CPixelKernels/pixel_kernels.c

test-kernels:
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	cc -O2 -Wall -Werror $(KERNEL_SRC) -o $$tmp/native && $$tmp/native && \
	cc -O2 -Wall -Werror -U__SSE2__ -U__ARM_NEON $(KERNEL_SRC) -o $$tmp/plain && $$tmp/plain && \
	aarch64-linux-gnu-gcc -O2 -Wall -Werror $(KERNEL_SRC) -o $$tmp/arm64 && qemu-aarch64 -L /usr/aarch64-linux-gnu $$tmp/arm64
