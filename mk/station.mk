# Station: the kiosk page in a real browser (headless Chromium over WebDriver).
APT_TEST += chromium chromium-driver cage
PIP_TEST += selenium

KIOSK_ARTIFACTS ?= .build/artifacts
# Point these at `telestation run` once the daemon is composed; by default the
# daemon runs on the in-memory demo backend and synthetic camera.
KIOSK_DAEMON    ?= $(DEBUG_BIN)/telestation-demo-station
KIOSK_ARGS      ?= --listen 127.0.0.1:0

.PHONY: test-kiosk
test: test-kiosk

# A slow simulated uplink keeps the progress bar visible in the screenshots,
# and one capture warning shows the review screen's warning style.
test-kiosk: build
	TELESTATION_DEMO_RATE=20000 TELESTATION_DEMO_WARNINGS=blurry python3 Tests/StationTests/kiosk/kiosk_test.py --daemon $(KIOSK_DAEMON) --args "$(KIOSK_ARGS)" \
	  --artifacts $(KIOSK_ARTIFACTS) --size 1024x600
	TELESTATION_DEMO_RATE=20000 python3 Tests/StationTests/kiosk/kiosk_test.py --daemon $(KIOSK_DAEMON) --args "$(KIOSK_ARGS)" \
	  --artifacts $(KIOSK_ARTIFACTS)/800x480 --size 800x480
	TELESTATION_DEMO_PROBLEMS=disk,token,camera python3 Tests/StationTests/kiosk/kiosk_test.py --daemon $(KIOSK_DAEMON) \
	  --args "$(KIOSK_ARGS)" --artifacts $(KIOSK_ARTIFACTS) --problems
