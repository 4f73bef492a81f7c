"""The QEMU tests that apply to aarch64, run there: keel built for aarch64-unknown-linux-musl,
Debian's arm64 kernel (tests/vm/fetch-kernel arm64) on QEMU virt (cortex-a57, TCG; device
tree, no ACPI). Each test is the x86 one's body (referenced through its module, so that
discovery does not run the x86 class twice), with what is particular to virt checked on top:
the power key there is gpio-keys on the PL061, through keel's evdev path, out of the box.

Not repeated here: the shell's poweroff/reboot/halt, services and container mode (the same
code whatever the architecture: the power key and panic tests already cover the shutdown
and reboot paths), the missing-module warning, and the shared console line (ttyS0-specific).
"""

import unittest

import test_boot
import test_debug
import test_disk
import test_panic
import test_power
from common import VmTest


class Arm64(VmTest):
    arch = "aarch64"
    powered_off = test_power.Power.powered_off

    def test_boot_phases(self):
        test_boot.Boot.test_ready_with_every_phase_mount(self)
        vm = self.vms[-1]
        # Out of the box: keel's default module list has all virt needs, without warnings.
        for line in (r"keel: modules: \d+ loaded, \d+ already present, 0 failed", r"keel: module gpio_keys loaded",
                     r"keel: power key: /dev/input/event\d+ \(gpio-keys\)"):  # fmt: skip
            self.assertTrue(vm.seen(line), f"no /{line}/ on the console; log: {vm.log_path}")

    def test_power_key(self):
        test_power.Power.test_power_button(self)
        vm = self.vms[-1]
        # keel's evdev path, not ACPI (virt has none without firmware).
        self.assertTrue(vm.seen(r"keel: poweroff requested \(power key\)"), f"log: {vm.log_path}")

    test_keelctl_over_a_virtio_console = test_debug.Debug.test_keelctl_over_a_virtio_console
    test_no_data_lost_on_power_button = test_disk.Disk.test_no_data_lost_on_power_button
    test_forced_panic_reboots = test_panic.Panic.test_forced_panic_reboots


if __name__ == "__main__":
    unittest.main()
