"""The clock floor: a machine whose real-time clock says 1970 (QEMU's -rtc base=) has its
clock raised to keel's build time; a clock later than the build is left alone."""

import time
import unittest
from datetime import datetime, timezone

from common import BOOT_TIMEOUT, VmTest

EARLY = "1970-01-02T00:00:00"
# Some years after any build of keel this test will meet.
LATE = datetime(2035, 6, 1, tzinfo=timezone.utc)


class ClockFloor(VmTest):
    def guest_time(self, vm):
        return int(vm.shell("date +%s").split()[0])

    def test_an_early_clock_is_raised_to_the_build_time(self):
        vm = self.boot(extra_args=["-rtc", f"base={EARLY}"])
        # The kernel read 1970 from the RTC; keel raised it.
        vm.wait_for(r"setting system clock to 1970-01-02", timeout=BOOT_TIMEOUT)
        m = vm.wait_for(r"keel: clock (\d+) raised to keel's build time (\d+)$", timeout=BOOT_TIMEOUT)
        was, floor = int(m.group(1)), int(m.group(2))
        raised_at = time.monotonic()
        self.assertLess(was, 2 * 86400, f"log: {vm.log_path}")
        # A build time, not a made-up number: after 2024 and not after now.
        self.assertGreater(floor, datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp())
        self.assertLessEqual(floor, time.time())
        vm.wait_for(r"keel: ready", timeout=BOOT_TIMEOUT)
        vm.wait_shell(timeout=BOOT_TIMEOUT)
        now = self.guest_time(vm)
        self.assertGreaterEqual(now, floor, f"the guest's clock is not raised; log: {vm.log_path}")
        self.assertLessEqual(now, floor + int(time.monotonic() - raised_at) + 5, f"log: {vm.log_path}")
        self.report(f"clock raised from {was} to {floor} ({datetime.fromtimestamp(floor, timezone.utc):%Y-%m-%d %H:%M})")

    def test_a_later_clock_is_not_lowered(self):
        vm = self.boot(extra_args=["-rtc", f"base={LATE:%Y-%m-%dT%H:%M:%S}"])
        vm.wait_for(r"keel: clock floor: skipped, not before keel's build", timeout=BOOT_TIMEOUT)
        vm.wait_for(r"keel: ready", timeout=BOOT_TIMEOUT)
        vm.wait_shell(timeout=BOOT_TIMEOUT)
        now = self.guest_time(vm)
        self.assertGreaterEqual(now, LATE.timestamp(), f"the clock went back; log: {vm.log_path}")
        self.assertLess(now, LATE.timestamp() + 600, f"log: {vm.log_path}")
        self.assertFalse(vm.seen(r"raised to keel's build time"), f"log: {vm.log_path}")


if __name__ == "__main__":
    unittest.main()
