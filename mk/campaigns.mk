# Campaigns against the built binaries (Tests/Campaigns): power cuts — the
# whole station SIGKILLed during capture, enqueue and upload against a real
# hub — and hub faults — the real daemon through a fault-injecting proxy.
# Short forms run in `make test`; `make soak` runs the long forms. Figures go
# to bench/campaigns/*.json, which the README's Guarantees section cites.
CAMPAIGN_RESULTS ?= bench/campaigns
# CI replays the seed that found duplicate uploads (see CreationSafetyTests);
# `make test-campaigns POWER_CUT_SEED=` picks a fresh one.
POWER_CUT_SEED   ?= 1234
HUB_FAULT_SEED   ?= 77
seed_arg = $(if $(strip $(1)),--seed $(1),)

.PHONY: test-campaigns soak soak-power-cut soak-hub-faults
TEST_STAGES += test-campaigns

test-campaigns: build
	$(PY) Tests/Campaigns/power_cut.py --bin $(DEBUG_BIN) --kills 200 $(call seed_arg,$(POWER_CUT_SEED)) \
	  --results $(CAMPAIGN_RESULTS)/power-cut-short.json
	$(PY) Tests/Campaigns/hub_faults.py --bin $(DEBUG_BIN) $(call seed_arg,$(HUB_FAULT_SEED)) \
	  --results $(CAMPAIGN_RESULTS)/hub-faults-short.json

# Long forms, each with a fresh seed (printed first): about 1.5 h and 15 min.
soak: soak-power-cut soak-hub-faults
soak-power-cut: build
	$(PY) Tests/Campaigns/power_cut.py --bin $(DEBUG_BIN) --kills 5000 --results $(CAMPAIGN_RESULTS)/power-cut-soak.json
soak-hub-faults: build
	$(PY) Tests/Campaigns/hub_faults.py --bin $(DEBUG_BIN) --images 40 --outage-seconds 60 --fault-seconds 600 \
	  --results $(CAMPAIGN_RESULTS)/hub-faults-soak.json

# cjpeg (libjpeg-turbo-progs) makes the test images; the TLS helpers need python3-cryptography.
APT_TEST += python3-cryptography
