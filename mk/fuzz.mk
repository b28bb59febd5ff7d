# Fuzz campaign (Tests/FuzzTests): structured random inputs for the config
# parser, tus responses, Upload-Metadata, JPEG/MJPEG frames and kiosk requests.
# The short form (a few thousand inputs per target) runs with the other test
# modules in `make test`; `make fuzz` runs FUZZ_ITERATIONS inputs per target
# and writes the figures to FUZZ_REPORT.

FUZZ_ITERATIONS ?= 1000000
FUZZ_SEED       ?= $(shell date +%s)
FUZZ_REPORT     ?= bench/results-fuzz.md

.PHONY: fuzz
TEST_MODULES += FuzzTests

fuzz: build
	bench/fuzz.sh $(FUZZ_ITERATIONS) $(FUZZ_SEED) $(FUZZ_REPORT)
