# Hardware-in-the-loop tests: the capture path against the kernel's vivid
# V4L2 driver inside a virtme-ng VM. Runs VM_BIN_DIR's telestation (the
# debug build; under `make test` the release build). Report:
# .build/vm-results/results.md
VM_OUT ?= .build/vm-results

.PHONY: test-hw
TEST_STAGES += test-hw

test-hw: build
	TEST_SKIP_FILE=$(TEST_SKIP_FILE) hardware/vm/run.sh $(VM_BIN_DIR)/telestation $(VM_OUT)

# What the VM harness needs on the host; `make deps` installs them with the rest.
APT_TEST += qemu-system-x86 linux-image-amd64 busybox-static linux-headers-amd64 v4l2loopback-dkms dosfstools
PIP_TEST += virtme-ng
