# The hub files DICOM uploads in a real PACS (Tests/Campaigns/pacs.py):
# telestation-hub --stow-url in front of Orthanc with its DICOMweb plugin,
# both started on loopback with their own configuration and storage; Orthanc
# stopped, Orthanc refusing, the hub restarted; then the reference deployment
# at scale, Orthanc on a PostgreSQL 15 cluster the test makes. Receipts and
# Orthanc's REST API are checked; a screenshot of a study in Orthanc Explorer
# under headless Chromium goes to PACS_ARTIFACTS/orthanc-study.png, the
# figures to bench/campaigns/pacs.json. Then the station's side
# (Tests/Campaigns/station_pacs.py): `telestation enqueue` and `sync` with
# [dicom] on, received only once Orthanc holds each image, an image the hub
# lost sent again, a plain tus server answered "sent, no receipt"; figures to
# bench/campaigns/station-pacs.json.
PACS_ARTIFACTS ?= .build/artifacts

.PHONY: test-pacs
TEST_STAGES += test-pacs

test-pacs: build deps-test
	$(PY) Tests/Campaigns/pacs.py --bin $(DEBUG_BIN) --artifacts $(PACS_ARTIFACTS) --results $(CAMPAIGN_RESULTS)/pacs.json
	$(PY) Tests/Campaigns/station_pacs.py --bin $(DEBUG_BIN) --results $(CAMPAIGN_RESULTS)/station-pacs.json

# Orthanc and its plugins, dcmtk's img2dcm/dcmdump for the test objects,
# PostgreSQL 15 for the index, Chromium and Selenium for the screenshot (also the kiosk test's).
APT_TEST += orthanc orthanc-dicomweb orthanc-postgresql dcmtk postgresql chromium chromium-driver python3-selenium
