# Fleet health, end to end (Tests/Campaigns/fleet.py): two real stations
# (`telestation run`, synthetic camera, [health] interval = "2s") report
# through a real telestation-hub on loopback; a real Prometheus (Debian's
# `prometheus`, own configuration and storage, 1 s scrapes, the shipped alert
# rules loaded) is asked through its HTTP API for both stations' series; the
# hub stops and comes back, and the reports queued meanwhile arrive late.
# First `promtool check rules` and `promtool test rules` on
# hardware/hub/telestation-alerts.yml. Figures: bench/campaigns/fleet.json.
# Budget: under 3 minutes.

.PHONY: test-fleet
TEST_STAGES += test-fleet

test-fleet: build deps-test
	$(PY) Tests/Campaigns/fleet.py --bin $(DEBUG_BIN) --results $(CAMPAIGN_RESULTS)/fleet.json

APT_TEST += prometheus
