# Telestation — build, test, install.
# `make test` and `make demo` work on a fresh Debian 12 / Raspberry Pi OS machine:
# they install what they need first (as root, or through sudo).
#
# `make test` builds once, then runs each stage named in TEST_STAGES, in
# order, as `$(MAKE) STAGE` (with `build` taken as done), printing each
# stage's duration and a table at the end. It runs every stage even after one
# fails, and exits non-zero if any failed.
#   Adding a stage: in mk/NAME.mk (or below), write the target and append it:
#       TEST_STAGES += test-foo
#   Stages run in the order they are appended: this file's first, then
#   mk/*.mk in alphabetical order. A stage may also be run on its own
#   (`make test-foo`).
# Skipped tests fail `make test` unless Tests/skips.allow lists them with the
# reason. A stage that skips something reports it with Tests/skips.py (see
# there), which under `make test` appends `STAGE ID: reason` to
# $(TEST_SKIP_FILE) (.build/test-skips/STAGE.txt); `make test` prints every
# skip at the end and judges it. Run on its own, a stage judges its skips at once.

PREFIX      ?= /usr
DESTDIR     ?=
SYSCONFDIR  ?= /etc
UNITDIR     ?= /lib/systemd/system
UDEVDIR     ?= /lib/udev/rules.d
SWIFT       ?= swift
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBUG_BIN   := .build/debug
# The binaries the VM stages (test-hw, test-powerloss) run inside the VM.
VM_BIN_DIR  ?= $(DEBUG_BIN)
# The release build's scratch directory (SwiftPM's --scratch-path): `make test`
# builds it in its own, .build-release, beside the debug build (see test).
RELEASE_SCRATCH ?= .build
RELEASE_BIN := $(RELEASE_SCRATCH)/release

# Debian packages: C libraries the code links, tools the tests drive.
# APT_DEMO: what hardware/demo.sh runs besides the binaries (curl, python3 for JSON).
APT_BUILD := libcurl4-openssl-dev libv4l-dev libturbojpeg0-dev libjxl-dev libsqlite3-dev pkg-config python3 binutils
APT_DEMO  := curl python3
APT_TEST  := libjpeg-turbo-progs v4l-utils systemd curl python3-venv lintian dpkg-dev binutils python3-stdnum gdb
# Python test tools: Debian's python3-* packages where they fit (APT_TEST), the
# rest from PyPI into a virtual environment. Debian 12 refuses `pip install`
# into the system interpreter (PEP 668), and a station's Python is not ours to change.
PIP_TEST  :=
# The venv is made from Debian's interpreter (not whatever python3 is first in
# PATH) and sees Debian's python3-* packages. Every Python script the tests run
# uses PY, and its bin/ comes first in PATH so the helpers the Swift tests start
# (`/usr/bin/env python3`) and vng resolve to it too.
DEBIAN_PYTHON ?= /usr/bin/python3
VENV      := .build/venv
PY        := $(CURDIR)/$(VENV)/bin/python3
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: deb test-deb all deps deps-build deps-test build release test test-scripts test-swift test-units install uninstall demo clean example-config check-skips

all: build

# apt-get install, as root or through sudo, of the packages in $(1) not yet installed.
apt_install = @missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Everything: what the build and the demo need, then the test tools.
deps: deps-build deps-test

# Only what `make build` and `make demo` use.
deps-build:
	$(call apt_install,$(APT_BUILD) $(APT_DEMO))

# The test tools: Debian packages, then the venv (rebuilt when PIP_TEST changes).
deps-test:
	$(call apt_install,$(APT_TEST))
	@[ -x $(DEBIAN_PYTHON) ] || { echo "deps-test: $(DEBIAN_PYTHON) is missing; install Debian's python3 (apt-get install python3-venv) or set DEBIAN_PYTHON"; exit 1; }
	@[ -x $(PY) ] || $(DEBIAN_PYTHON) -m venv --system-site-packages $(VENV)
	@want="$(strip $(PIP_TEST))"; \
	if [ -n "$$want" ] && [ "$$(cat $(VENV)/pip-test.txt 2>/dev/null)" != "$$want" ]; then \
	  echo "installing into $(VENV): $$want"; \
	  $(PY) -m pip install -q --disable-pip-version-check $$want && echo "$$want" > $(VENV)/pip-test.txt; \
	fi

# Test stages use the test tools even when run one by one (`make test-kiosk`).
test-scripts test-swift test-units test-deb test-campaigns soak-power-cut soak-hub-faults test-hw test-kiosk test-uplink test-uplink-long fuzz: deps-test

build: deps-build
	$(SWIFT) build --build-tests

# The Swift runtime is linked in, so the installed binary needs only Debian's libraries.
# Only the telestation product: it is what the package ships (telestation-hub is
# the same binary), and building every product would also try to link the
# dependencies' dynamic-library products, which a static runtime cannot.
# --no-export-dynamic undoes the -export-dynamic the static runtime's link
# arguments add: it exported every Swift symbol of the program (35 000 names,
# 3.3 MB of .dynsym/.dynstr/.gnu.hash) that no library looks up; names for a
# crash come from the -dbgsym package instead (bench/package/RESULTS.md).
#
# The static runtime also links Foundation's whole ICU data (34 MB, 8.1 MB
# after xz: 41 % of the .deb). hardware/icu/trim-icu-data.py writes it without
# what the station never reads (converters for other charsets, word-break
# dictionaries, transliterations, other languages' collations; 21 MB, 4.2 MB
# after xz) as an object that defines its own symbol; --defsym points ICU's
# at it, so the linker never pulls the archive's full copy. It also removes
# the release binary when the data changed, since SwiftPM does not know about
# the object and would not link again.
RELEASE_FLAGS := -c release --static-swift-stdlib -Xlinker --no-export-dynamic
SWIFT_STATIC_DIR = $(dir $(realpath $(shell command -v $(SWIFT))))../lib/swift_static/linux
release: deps-build
	python3 hardware/icu/trim-icu-data.py $(SWIFT_STATIC_DIR)/lib_FoundationICU.a $(RELEASE_SCRATCH)/icu $(RELEASE_BIN)/telestation
	$(SWIFT) build $(RELEASE_FLAGS) $$(cat $(RELEASE_SCRATCH)/icu/link-flags) --scratch-path $(RELEASE_SCRATCH) --product telestation
	ln -sf telestation $(RELEASE_BIN)/telestation-hub

# The stages of `make test`, in order (mk/*.mk append theirs; test-deb is
# appended last, after them).
TEST_STAGES := test-scripts test-swift test-units
# Under `make test`: where stages record their skips (see the top of this file).
TEST_SKIPS_DIR ?=
TEST_SKIP_FILE = $(if $(TEST_SKIPS_DIR),$(TEST_SKIPS_DIR)/$@.txt)
# The release build runs in the background from the start, at the lowest CPU
# priority, in its own scratch directory (so SwiftPM's lock on .build never
# holds up a stage): it takes the CPU the stages before it leave idle (the
# browser, PACS and fleet stages mostly wait) instead of adding the ~11
# minutes of a 2-core machine's release build to the run. The stages in
# TEST_RELEASE_STAGES wait for it and use it: test-deb packages it, and the
# VM stages run the binary that ships inside the VM (VM_BIN_DIR). Under
# software emulation a debug build is too slow there: its live previews held
# the camera's buffers long enough for vivid to drop most frames on a busy
# machine. Its log is .build/test-release.log.
TEST_RELEASE_SCRATCH := .build-release
TEST_RELEASE_STAGES  := test-hw test-powerloss test-deb

# One build, reused by every test stage.
test: build
	@skips=$(CURDIR)/.build/test-skips; rm -rf $$skips; mkdir -p $$skips; \
	table=.build/test-stages.txt; : > $$table; failed=0; begin=$$(date +%s); \
	rel=.build/test-release; rm -f $$rel.rc; relrc=""; \
	setsid sh -c 'start=$$(date +%s); nice -n 19 $(MAKE) --no-print-directory -o deps-build release RELEASE_SCRATCH=$(TEST_RELEASE_SCRATCH) \
	  > $$0.log 2>&1; rc=$$?; echo "$$rc $$(( $$(date +%s) - start ))" > $$0.rc' $$rel & relpid=$$!; \
	trap 'kill -- -$$relpid 2>/dev/null' EXIT; \
	echo "release build for $(TEST_RELEASE_STAGES): in the background (nice 19), log $$rel.log"; \
	for stage in $(TEST_STAGES); do \
	  echo "==== $$stage"; start=$$(date +%s); extra=""; \
	  if echo " $(TEST_RELEASE_STAGES) " | grep -q " $$stage "; then \
	    [ -f $$rel.rc ] || echo "waiting for the background release build"; while [ ! -f $$rel.rc ]; do sleep 5; done; \
	    read relrc relt < $$rel.rc; tail -n 2 $$rel.log; \
	    echo "release build: exit $$relrc after $$((relt / 60))m$$(printf %02d $$((relt % 60))) in the background"; \
	    extra="-o release RELEASE_SCRATCH=$(TEST_RELEASE_SCRATCH) VM_BIN_DIR=$(TEST_RELEASE_SCRATCH)/release"; \
	  fi; \
	  if [ "$$relrc" != "" ] && [ "$$relrc" != 0 ]; then r=FAIL; failed=1; cat $$rel.log | tail -n 30; \
	  elif $(MAKE) --no-print-directory -o build -o deps $$extra $$stage TEST_SKIPS_DIR=$$skips; then r=PASS; else r=FAIL; failed=1; fi; \
	  t=$$(( $$(date +%s) - start )); \
	  printf '==== %s: %s in %dm%02ds\n' $$stage $$r $$((t / 60)) $$((t % 60)); \
	  printf '  %-18s %s  %4dm%02ds\n' $$stage $$r $$((t / 60)) $$((t % 60)) >> $$table; \
	done; \
	t=$$(( $$(date +%s) - begin )); \
	printf '\nstage                result    time\n'; cat $$table; \
	printf '  %-18s %s  %4dm%02ds\n' 'all stages' $$([ $$failed = 0 ] && echo PASS || echo FAIL) $$((t / 60)) $$((t % 60)); \
	[ -f $$rel.rc ] && read relrc relt < $$rel.rc && printf '  (release build: %dm%02ds in the background)\n' $$((relt / 60)) $$((relt % 60)); \
	python3 Tests/skips.py check $$skips || failed=1; \
	exit $$failed

# The skips recorded by the last `make test`, judged again.
check-skips:
	@python3 Tests/skips.py check .build/test-skips

# The test scripts' own logic (skip report, VM evidence, bench checks) on
# recorded and synthetic input: seconds, so it runs first.
test-scripts:
	python3 -m unittest discover -s Tests/Scripts

# One test process per module: a module's tests that block a thread (running
# the CLI, waiting on a child process) then never starve another module's
# in-process servers on a 2-core machine. Each module's log is scanned for
# skipped tests, and for a filter that ran nothing.
TEST_MODULES := BasicsTests ConfigTests ImagingTests CaptureTests SpoolTests UplinkTests HubTests DiagnosticsTests StationTests CLITests
test-swift:
	@mkdir -p .build/test-logs; failed=""; for m in $(TEST_MODULES); do \
	  echo "== swift test: $$m"; log=.build/test-logs/swift-$$m.log; \
	  { $(SWIFT) test --skip-build --filter "^$$m\." 2>&1; echo $$? > $$log.rc; } | tee $$log; \
	  [ "$$(cat $$log.rc)" = 0 ] || failed="$$failed $$m"; \
	  TEST_SKIP_FILE=$(TEST_SKIP_FILE) python3 Tests/skips.py swift-log $$m $$log || failed="$$failed $$m(skips or no test run)"; \
	done; \
	if [ -n "$$failed" ]; then echo "failed:$$failed"; exit 1; fi

# systemd units: offline verification against the installed tree, and the hardening score.
test-units:
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	$(MAKE) --no-print-directory install-files BIN_DIR=$(DEBUG_BIN) DESTDIR=$$tmp >/dev/null || exit 1; \
	for u in telestation.service telestation-kiosk.service; do \
	  sed "s|/usr/bin/telestation|$$tmp$(PREFIX)/bin/telestation|g" $$tmp$(UNITDIR)/$$u > $$tmp/$$u; \
	  SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no $$tmp/$$u || exit 1; \
	done; \
	out=$$(systemd-analyze security --offline=true $$tmp$(UNITDIR)/telestation.service) \
	  || { echo "$$out"; echo "systemd-analyze security failed on telestation.service"; exit 1; }; \
	score=$$(echo "$$out" | awk '/Overall exposure level/ {print $$(NF-2)}'); \
	echo "$$score" | grep -Eq '^[0-9]+(\.[0-9]+)?$$' \
	  || { echo "$$out" | tail -n 3; echo "no exposure score in systemd-analyze security's output (got \"$$score\")"; exit 1; }; \
	echo "telestation.service exposure: $$score"; \
	awk -v s="$$score" 'BEGIN { exit !(s + 0 <= 2.0) }' || { echo "exposure $$score is above 2.0"; exit 1; }; \
	echo "units: verify OK"

install: release
	$(MAKE) --no-print-directory install-files BIN_DIR=$(RELEASE_BIN)

BIN_DIR ?= $(RELEASE_BIN)
INSTALL_CONFIG ?= yes
# One binary: telestation-hub is a symlink, and telestation started under that
# name is the hub (Sources/HubCommand), so the runtime ships once.
install-files:
	install -D -m 0755 $(BIN_DIR)/telestation $(DESTDIR)$(PREFIX)/bin/telestation
	ln -sf telestation $(DESTDIR)$(PREFIX)/bin/telestation-hub
	install -D -m 0644 systemd/telestation.service $(DESTDIR)$(UNITDIR)/telestation.service
	install -D -m 0644 systemd/telestation-kiosk.service $(DESTDIR)$(UNITDIR)/telestation-kiosk.service
	install -D -m 0644 systemd/telestation.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/telestation.conf
	install -D -m 0644 systemd/telestation.tmpfiles $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/telestation.conf
	install -D -m 0644 hardware/station.example.toml $(DESTDIR)$(PREFIX)/share/doc/telestation/station.example.toml
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/telestation/README.md
	@if [ -d hardware/udev ]; then for r in hardware/udev/*.rules; do install -D -m 0644 $$r $(DESTDIR)$(UDEVDIR)/$$(basename $$r); done; fi
	@if [ -d hardware/profiles ]; then for p in hardware/profiles/*.toml; do install -D -m 0644 $$p $(DESTDIR)$(PREFIX)/share/telestation/profiles/$$(basename $$p); done; fi
	@if [ "$(INSTALL_CONFIG)" != no ] && [ ! -e $(DESTDIR)$(SYSCONFDIR)/telestation/station.toml ]; then \
	  install -D -m 0640 hardware/station.example.toml $(DESTDIR)$(SYSCONFDIR)/telestation/station.toml; fi

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/telestation $(DESTDIR)$(PREFIX)/bin/telestation-hub
	rm -f $(DESTDIR)$(UNITDIR)/telestation.service $(DESTDIR)$(UNITDIR)/telestation-kiosk.service
	rm -f $(DESTDIR)$(PREFIX)/lib/sysusers.d/telestation.conf $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/telestation.conf
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/telestation $(DESTDIR)$(PREFIX)/share/telestation

# The whole path on embedded defaults: synthetic camera, a local hub, the queue, the upload.
# Builds the programs only, not the tests: the demo needs no test tools either.
demo: deps-build
	$(SWIFT) build
	hardware/demo.sh $(DEBUG_BIN)

# Regenerates the annotated example from the schema in Sources/Config.
example-config: build
	$(DEBUG_BIN)/telestation config --example > hardware/station.example.toml

VERSION := 0.1.0
DEB_OUT := .build-deb

# A Debian package for this machine's architecture (build on an arm64 board for arm64).
deb: release
	hardware/debian/build-deb.sh $(VERSION) $(RELEASE_BIN) $(DEB_OUT)

# lintian, then a real install, start as the service user, remove and purge.
test-deb: deb
	TEST_SKIP_FILE=$(TEST_SKIP_FILE) hardware/debian/test-deb.sh $(DEB_OUT)/telestation_$(VERSION)_$$(dpkg --print-architecture).deb

clean:
	$(SWIFT) package clean
	rm -rf bench/out hardware/vm/out

# Per-module targets and test dependencies (included last so `all` stays the default goal).
-include mk/*.mk
# Last: it packages the release build (see test).
TEST_STAGES += test-deb
