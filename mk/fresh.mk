# Fresh-machine set-up: the README's "Two commands" on a debootstrapped,
# minimal Debian 12 as a new user would run them — the toolchain's
# prerequisites from Tests/Fresh/swift-prerequisites, this machine's Swift
# toolchain bound in, a clean clone of the current commit, `make demo`.
# The root is cached in FRESH_DIR; see Tests/Fresh/run.sh.
FRESH_DIR ?= $(CURDIR)/.build-fresh
APT_TEST  += debootstrap

.PHONY: test-fresh
test: test-fresh

test-fresh: deps-test
	$(SUDO) env FRESH_DIR=$(FRESH_DIR) Tests/Fresh/run.sh
