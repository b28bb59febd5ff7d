# Fuzz campaign (Tests/FuzzTests): structured random inputs for the config
# parser, tus responses, Upload-Metadata, JPEG/MJPEG frames, the DICOM writer's
# JPEG frame-header parser, kiosk requests and stations' health reports at the hub.
# The short form (10,000 to 20,000 inputs per target, under a minute) runs with the other test
# modules in `make test`; `make fuzz` runs FUZZ_ITERATIONS inputs per target
# and writes the figures to FUZZ_REPORT.

FUZZ_ITERATIONS ?= 1000000
FUZZ_SEED       ?= $(shell date +%s)
FUZZ_REPORT     ?= bench/results-fuzz.md
FUZZ_JOBS       ?= 1

.PHONY: fuzz
TEST_MODULES += FuzzTests

fuzz: build
	FUZZ_JOBS=$(FUZZ_JOBS) bench/fuzz.sh $(FUZZ_ITERATIONS) $(FUZZ_SEED) $(FUZZ_REPORT)
