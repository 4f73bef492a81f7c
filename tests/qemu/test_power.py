"""Power: the ACPI power button (QMP system_powerdown), and poweroff/reboot/halt typed in
the console shell (keel's own applets, /sbin/* -> /init). QEMU runs with -no-reboot, so a
guest reboot ends QEMU too; QMP's SHUTDOWN event tells poweroff (guest-shutdown) from
reboot (guest-reset)."""

import time
import unittest

from common import EXIT_TIMEOUT, VmTest


class Power(VmTest):
    def powered_off(self, vm, how):
        status = vm.wait_exit(EXIT_TIMEOUT)
        self.assertEqual(status, 0, f"QEMU exit status; log: {vm.log_path}")
        self.assertTrue(vm.seen(r"keel: poweroff"), f"no `keel: poweroff` line; log: {vm.log_path}")
        self.assertEqual(vm.shutdown_reason(), "guest-shutdown", f"log: {vm.log_path}")
        self.assertFalse(vm.seen(r"Attempted to kill init"), f"PID 1 died; log: {vm.log_path}")
        self.report(f"{how} -> QEMU exit: {vm.since(how) * 1000:.0f} ms (host)")

    def test_power_button(self):
        vm = self.boot_ready()
        vm.qmp("system_powerdown")
        self.powered_off(vm, "system_powerdown")

    def test_shell_poweroff(self):
        vm = self.boot_ready()
        vm.marks["poweroff"] = time.monotonic()
        vm.send("poweroff\n")
        self.powered_off(vm, "poweroff")

    def test_shell_reboot(self):
        vm = self.boot_ready()
        vm.marks["reboot"] = time.monotonic()
        vm.send("reboot\n")
        status = vm.wait_exit(EXIT_TIMEOUT)
        self.assertEqual(status, 0, f"QEMU exit status; log: {vm.log_path}")
        self.assertTrue(vm.seen(r"keel: reboot"), f"no `keel: reboot` line; log: {vm.log_path}")
        self.assertEqual(vm.shutdown_reason(), "guest-reset", f"log: {vm.log_path}")
        self.assertFalse(vm.seen(r"Attempted to kill init"), f"PID 1 died; log: {vm.log_path}")
        self.report(f"reboot -> QEMU exit: {vm.since('reboot') * 1000:.0f} ms (host)")

    def test_shell_halt(self):
        vm = self.boot_ready()
        vm.send("halt\n")
        vm.wait_for(r"keel: halt", timeout=EXIT_TIMEOUT)
        # The kernel's last word on halt; then the CPU stops for good, QEMU stays up.
        vm.wait_for(r"System halted", timeout=EXIT_TIMEOUT)
        time.sleep(1)
        self.assertTrue(vm.running(), f"QEMU exited on halt; log: {vm.log_path}")
        self.assertEqual(vm.qmp("query-status").get("status"), "running")  # a halted CPU, not a paused VM
        # Nothing answers any more: no shell, no keel.
        before = len(vm.text)
        vm.send("echo still-alive-$((1+1))\n")
        time.sleep(2)
        self.assertNotIn("still-alive-2", vm.text[before:], f"the guest still runs a shell; log: {vm.log_path}")
        self.assertFalse(vm.seen(r"Attempted to kill init"), f"PID 1 died; log: {vm.log_path}")
        vm.qmp("quit")
        vm.wait_exit(10)


if __name__ == "__main__":
    unittest.main()
