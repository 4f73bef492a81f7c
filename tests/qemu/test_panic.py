"""A panic in PID 1 (test-hooks build, keel.test_panic) is reported with its location and
followed by keel.panic=: here a reboot after 1 s, which -no-reboot turns into QEMU exiting.
The kernel must never see init die."""

import unittest

from common import BOOT_TIMEOUT, EXIT_TIMEOUT, VmTest


class Panic(VmTest):
    def test_forced_panic_reboots(self):
        vm = self.boot(self.initramfs("test-hooks", init="test"), append="keel.test_panic keel.panic=reboot:1")
        vm.wait_for(r"panic.*src/", timeout=BOOT_TIMEOUT)
        status = vm.wait_exit(EXIT_TIMEOUT)
        self.assertEqual(status, 0, f"QEMU exit status; log: {vm.log_path}")
        self.assertEqual(vm.shutdown_reason(), "guest-reset", f"not a reboot; log: {vm.log_path}")
        self.assertFalse(vm.seen(r"Attempted to kill init"), f"PID 1 died; log: {vm.log_path}")


if __name__ == "__main__":
    unittest.main()
