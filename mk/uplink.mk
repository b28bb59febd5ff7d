# Uplink and hub targets; included from the top-level Makefile.

.PHONY: test-uplink test-uplink-long hub

# Unit, status-code, interop (telestation-hub, aiohttp-tus) and short impaired-link tests.
test-uplink:
	swift build --build-tests
	swift test --skip-build --filter 'UplinkTests|HubTests'

# The impaired-link test at full size: 3 x 1 MB at 128 kbit/s (about 5 minutes).
test-uplink-long:
	swift build --build-tests
	TELESTATION_LONG_TESTS=1 swift test --skip-build --filter UplinkTests.ImpairedLinkTests

# A local hub for trying the station by hand.
hub:
	swift build --product telestation-hub
	mkdir -p .hub-store
	.build/debug/telestation-hub --listen 127.0.0.1:1080 --store .hub-store

# The independent tus server the interop tests upload to: aiohttp from Debian,
# aiohttp-tus (not packaged) into the venv.
APT_TEST += python3-aiohttp
PIP_TEST += aiohttp-tus

# The uplink benchmark on the path that ships (bench/uplink/run.py: `telestation
# enqueue` + `sync` vs tuspy vs the floor, to telestation-hub and aiohttp-tus,
# BENCH_UPLINK_RUNS paired runs; about 13 minutes per paired run of all four).
# tuspy and matplotlib go into the venv, never the system Python.
BENCH_UPLINK_RUNS ?= 5
.PHONY: bench-uplink
bench-uplink: build deps-test
	$(VENV)/bin/pip install --quiet tuspy
	$(PY) bench/uplink/run.py --runs $(BENCH_UPLINK_RUNS) --results bench/uplink/results.json
