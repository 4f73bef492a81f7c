"""Boot to `keel: ready` on a stock Debian kernel: the boot phases' mounts, module warnings."""

import re
import unittest

from common import BOOT_TIMEOUT, VmTest

# Every mount of keel's boot phase table (src/boot/phases.rs).
PHASE_MOUNTS = ["/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/run", "/sys/fs/cgroup"]


class Boot(VmTest):
    def test_ready_with_every_phase_mount(self):
        vm = self.boot_ready()
        mounts = vm.shell("cat /proc/mounts")
        points = {line.split()[1] for line in mounts.splitlines() if len(line.split()) >= 3}
        missing = [m for m in PHASE_MOUNTS if m not in points]
        self.assertEqual(missing, [], f"not mounted: {missing}; /proc/mounts:\n{mounts}\nlog: {vm.log_path}")
        start = vm.guest_time(r"Run /init as init process")
        ready = vm.guest_time(r"keel: ready")
        if start is not None and ready is not None:
            self.report(f"/init exec at {start:.3f} s, keel: ready at {ready:.3f} s (+{(ready - start) * 1000:.0f} ms)")

    def test_missing_module_is_a_warning(self):
        # evdev is left out of the initramfs but asked for: keel names it and boots on.
        vm = self.boot(
            self.initramfs("no-evdev", omit=["evdev"]),
            append="keel.modules=evdev",
        )
        vm.wait_for(r"keel: ready", timeout=BOOT_TIMEOUT)
        warned = [
            l for l in vm.text.splitlines() if re.search(r"keel:.*\bevdev\b", l) and "keel.modules" not in l
        ]
        self.assertTrue(warned, f"no keel line names the missing module evdev; log: {vm.log_path}")
        self.report(f"warned: {warned[0].strip()}")


if __name__ == "__main__":
    unittest.main()
