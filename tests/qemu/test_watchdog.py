"""The hardware watchdog (keel.watchdog=): QEMU's i6300esb with -watchdog-action reset, which
-no-reboot turns into QEMU exiting. QEMU 7.2 then sends a WATCHDOG event (action "reset")
before SHUTDOWN (reason "guest-reset"): that is how a reset by the hardware is told from a
reboot by keel. keel pets it from its loop at a third of the timeout; a loop that stops
(keel.test_hang) or a power sequence that hangs (keel.test_hang_shutdown) ends in the reset,
the latter only after the bound keel sets for the whole sequence."""

import time
import unittest

from common import BOOT_TIMEOUT, EXIT_TIMEOUT, REPO, VmTest

# The watchdog's driver comes with a configuration that names it ([system] modules: packed
# by keelctl image and loaded by keel), until modules are coldplugged by modalias.
CONFIG = REPO / "tests/qemu/image/watchdog.toml"
WATCHDOG = ["-device", "i6300esb", "-watchdog-action", "reset"]
TIMEOUT = 3  # seconds: petted every second
APPEND = f"keel.watchdog=watchdog0:{TIMEOUT}"


class Watchdog(VmTest):
    def watchdog_initramfs(self):
        return self.initramfs("watchdog", init="test", extra=["--config", str(CONFIG)])

    def boot_watched(self, append=""):
        vm = self.boot(self.watchdog_initramfs(), append=f"{APPEND} {append}", extra_args=WATCHDOG)
        vm.wait_for(rf"keel: watchdog watchdog0: {TIMEOUT} s", timeout=BOOT_TIMEOUT)
        return vm

    def watchdog_events(self, vm):
        return [e for e in vm.events() if e.get("event") == "WATCHDOG"]

    def assert_reset_by_hardware(self, vm):
        self.assertEqual(vm.shutdown_reason(), "guest-reset", f"log: {vm.log_path}")
        actions = [e.get("data", {}).get("action") for e in self.watchdog_events(vm)]
        self.assertEqual(actions, ["reset"], f"QMP WATCHDOG events; log: {vm.log_path}")
        self.assertFalse(vm.seen(r"keel: (reboot|poweroff|halt)$"), f"keel itself ended the machine; log: {vm.log_path}")

    def test_pets_keep_it_alive_and_a_poweroff_is_not_cut_short(self):
        vm = self.boot_watched()
        vm.wait_for(r"keel: ready", timeout=BOOT_TIMEOUT)
        vm.wait_shell(timeout=BOOT_TIMEOUT)
        sysfs = vm.shell("cat /sys/class/watchdog/watchdog0/identity /sys/class/watchdog/watchdog0/state "
                         "/sys/class/watchdog/watchdog0/timeout")  # fmt: skip
        self.assertEqual(sysfs.split("\n")[:3], ["i6300ESB timer", "active", str(TIMEOUT)], f"log: {vm.log_path}")
        # Four timeouts without a reset: only keel's pets can have kept it from firing.
        time.sleep(4 * TIMEOUT)
        self.assertTrue(vm.running(), f"reset while keel runs; log: {vm.log_path}")
        self.assertIn("alive", vm.shell("echo alive"))
        # The power sequence gets the whole bound (10 s deadline + 1 s after SIGKILL + 30 s
        # sync cap + 5 s grace) and ends well before it, by itself.
        vm.send("poweroff\n")
        vm.wait_for(r"keel: watchdog: reset in 46 s", timeout=10)
        self.assertEqual(vm.wait_exit(EXIT_TIMEOUT), 0, f"log: {vm.log_path}")
        self.assertEqual(vm.shutdown_reason(), "guest-shutdown", f"log: {vm.log_path}")
        self.assertEqual(self.watchdog_events(vm), [], f"log: {vm.log_path}")
        self.assertFalse(vm.seen(r"Attempted to kill init"), f"PID 1 died; log: {vm.log_path}")

    def test_a_stopped_loop_resets_the_machine_within_the_timeout(self):
        vm = self.boot_watched("keel.test_hang")
        vm.wait_for(r"keel: keel.test_hang: sleeping for good", timeout=BOOT_TIMEOUT)
        hung = time.monotonic()
        self.assertEqual(vm.wait_exit(EXIT_TIMEOUT), 0, f"log: {vm.log_path}")
        took = vm.marks["exit"] - hung
        # The last pet came at most a third of the timeout before the hang.
        self.assertGreater(took, TIMEOUT * 2 / 3 - 0.5, f"log: {vm.log_path}")
        self.assertLess(took, TIMEOUT + 5, f"log: {vm.log_path}")
        self.assert_reset_by_hardware(vm)
        self.report(f"hang -> reset: {took:.1f} s (timeout {TIMEOUT} s)")

    def test_a_hung_power_sequence_ends_by_the_hardware_bound(self):
        # Bound: 2 s deadline + 1 s after SIGKILL + 2 s sync cap + 5 s grace = 10 s; longer
        # than the 3 s timeout, so the reset coming after ~10 s shows the bound was set.
        vm = self.boot_watched("keel.test_hang_shutdown keel.shutdown_timeout=2 keel.sync_timeout=2")
        vm.wait_for(r"keel: ready", timeout=BOOT_TIMEOUT)
        vm.wait_shell(timeout=BOOT_TIMEOUT)
        vm.send("poweroff\n")
        vm.wait_for(r"keel: watchdog: reset in 10 s", timeout=10)
        vm.wait_for(r"keel: keel.test_hang_shutdown: sleeping for good", timeout=5)
        bounded = time.monotonic()
        self.assertEqual(vm.wait_exit(EXIT_TIMEOUT), 0, f"log: {vm.log_path}")
        took = vm.marks["exit"] - bounded
        self.assertGreater(took, 9, f"reset before the bound; log: {vm.log_path}")
        self.assertLess(took, 10 + 5, f"log: {vm.log_path}")
        self.assert_reset_by_hardware(vm)
        self.report(f"hung shutdown -> reset: {took:.1f} s (bound 10 s)")


if __name__ == "__main__":
    unittest.main()
