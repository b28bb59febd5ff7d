# USB-stick bundles (Sources/Sneakernet): sealing, opening, and every way a
# stick can be damaged or tampered with, on real files. The whole trip on a
# USB disk (dummy_hcd + the mass-storage gadget) runs in the VM (test-hw,
# hardware/vm/stick_checks.py).
TEST_MODULES += SneakernetTests
