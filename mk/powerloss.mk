# Power loss for real (Tests/Campaigns/vm_power_cut.py): the station's spool
# on an ext4 virtual disk of a virtme-ng VM, the whole VM killed (QEMU
# SIGKILLed, the guest's page cache lost) during capture, enqueue, upload and
# retention; e2fsck after every cut; at the end every acknowledged image is on
# the hub (on the host's loopback) once and byte-identical. The short form
# runs in `make test`: 12 cuts, 18-45 s each under software emulation on a
# 2-core machine depending on its speed and load (4-9 min), kept short for
# the test run's budget; the long form, 200 cuts, in `make soak`. Figures
# go to bench/campaigns/vm-power-cut-*.json.
# VNG= names virtme-ng's vng when it is not on PATH (or in .build/venv/bin).
POWERLOSS_CUTS      ?= 12
POWERLOSS_SOAK_CUTS ?= 200
POWERLOSS_SEED      ?= 4242
VNG                 ?=
powerloss_vng = $(if $(strip $(VNG)),--vng $(VNG),)

.PHONY: test-powerloss soak-powerloss
TEST_STAGES += test-powerloss
soak: soak-powerloss

test-powerloss: build deps-test
	$(PY) Tests/Campaigns/vm_power_cut.py --bin $(VM_BIN_DIR) --cuts $(POWERLOSS_CUTS) $(call seed_arg,$(POWERLOSS_SEED)) \
	  $(powerloss_vng) --results $(CAMPAIGN_RESULTS)/vm-power-cut-short.json

# A fresh seed each time (printed first); 1-2 h.
soak-powerloss: build deps-test
	$(PY) Tests/Campaigns/vm_power_cut.py --bin $(DEBUG_BIN) --cuts $(POWERLOSS_SOAK_CUTS) \
	  $(powerloss_vng) --results $(CAMPAIGN_RESULTS)/vm-power-cut-soak.json

# e2fsck/debugfs/mkfs.ext4 (e2fsprogs) check and read the disk image; the
# guest polls the queue with the sqlite3 shell; qemu, the kernel and vng come
# with the VM harness (mk/hw.mk).
APT_TEST += e2fsprogs sqlite3 gcc
