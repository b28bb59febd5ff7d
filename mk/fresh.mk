# Fresh-machine set-up: the README's "Two commands" on a debootstrapped,
# minimal Debian 12 as a new user would run them — the toolchain's
# prerequisites from Tests/Fresh/swift-prerequisites, this machine's Swift
# toolchain bound in, a clean clone of the current commit, `make demo`.
# The root is cached in FRESH_DIR (about 1 GB with the .debs); see
# Tests/Fresh/run.sh. Needs root, or sudo.
FRESH_DIR   ?= $(CURDIR)/.build-fresh
# The toolchain this machine builds with: the directory holding usr/bin/swift.
FRESH_SWIFT ?= $(abspath $(dir $(realpath $(shell command -v $(SWIFT))))/../..)
APT_TEST    += debootstrap

.PHONY: test-fresh clean-fresh
TEST_STAGES += test-fresh

test-fresh: deps-test
	$(SUDO) env FRESH_DIR=$(FRESH_DIR) FRESH_SWIFT=$(FRESH_SWIFT) Tests/Fresh/run.sh

# Removes the cached root; refuses while anything is mounted inside it.
clean-fresh:
	@if findmnt -rn -o TARGET | grep -q "^$(FRESH_DIR)/"; then echo "clean-fresh: $(FRESH_DIR) still has mounts"; exit 1; fi
	$(SUDO) rm -rf --one-file-system $(FRESH_DIR)
