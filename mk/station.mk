# Station: the kiosk page in a real browser (headless Chromium over WebDriver).
APT_TEST += chromium chromium-driver cage
# Debian 12 has Selenium 4.8, enough for this test.
APT_TEST += python3-selenium
# axe-core's accessibility rules (WCAG 2 A/AA, colour contrast) run inside the page.
PIP_TEST += axe-selenium-python==2.1.6

KIOSK_ARTIFACTS ?= .build/artifacts
# The real daemon (`telestation run`, synthetic camera, a real hub behind a rate cap).
KIOSK_DAEMON    ?= Tests/StationTests/kiosk/live-station.sh
KIOSK_ARGS      ?= $(DEBUG_BIN)
# The demo daemon fakes health problems (a missing camera, a rejected token, a full disk) on demand.
KIOSK_DEMO      ?= $(DEBUG_BIN)/telestation-demo-station

.PHONY: test-kiosk
TEST_STAGES += test-kiosk

# A slow simulated uplink keeps the progress bar visible in the screenshots,
# and one capture warning shows the review screen's warning style.
test-kiosk: build
	$(PY) Tests/StationTests/kiosk/kiosk_test.py --daemon $(KIOSK_DAEMON) --args "$(KIOSK_ARGS)" \
	  --artifacts $(KIOSK_ARTIFACTS) --size 1024x600
	$(PY) Tests/StationTests/kiosk/kiosk_test.py --daemon $(KIOSK_DAEMON) --args "$(KIOSK_ARGS)" \
	  --artifacts $(KIOSK_ARTIFACTS)/800x480 --size 800x480
	TELESTATION_DEMO_PROBLEMS=disk,token,camera,stick $(PY) Tests/StationTests/kiosk/kiosk_test.py --daemon $(KIOSK_DEMO) \
	  --args "--listen 127.0.0.1:0" --artifacts $(KIOSK_ARTIFACTS)/800x480 --size 800x480 --problems
