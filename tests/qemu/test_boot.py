"""Boot to `keel: ready` on a stock Debian kernel: the boot phases' mounts, module warnings."""

import re
import unittest

from common import BOOT_TIMEOUT, EXIT_TIMEOUT, VmTest, initramfs

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

    def test_no_console_in_the_initramfs_keeps_the_signalfd(self):
        # No /dev/console (nor /dev/null) in the initramfs: the kernel starts PID 1 with fds
        # 0-2 closed. keel holds them with stand-ins first thing, so its signalfd is not fd 0
        # when the console phase puts /dev/console on 0-2: SIGCHLD and power signals still
        # reach the loop.
        vm = self.boot(initramfs("no-console", extra=["--no-console"]))
        vm.wait_for(r"Warning: unable to open an initial console", timeout=BOOT_TIMEOUT)
        vm.wait_for(r"keel: console \(\d+ us\)", timeout=BOOT_TIMEOUT)
        vm.wait_for(r"keel: ready", timeout=BOOT_TIMEOUT)
        vm.wait_shell(timeout=BOOT_TIMEOUT)
        # Typed once, then nothing: an orphan exiting after 1 s (only its SIGCHLD can wake
        # PID 1 to reap it), and busybox's `kill -USR2 1` (poweroff) after 3 s.
        vm.send("(sleep 1 &); (sleep 3; kill -USR2 1) &\n")
        vm.wait_for(r"keel: reaped pid \d+ \(exit 0\)", timeout=5)
        vm.wait_for(r"keel: poweroff requested \(signal 12 from pid \d+\)", timeout=10)
        self.assertEqual(vm.wait_exit(EXIT_TIMEOUT), 0, f"log: {vm.log_path}")
        self.assertEqual(vm.shutdown_reason(), "guest-shutdown", f"log: {vm.log_path}")
        self.assertFalse(vm.seen(r"Attempted to kill init"), f"PID 1 died; log: {vm.log_path}")


if __name__ == "__main__":
    unittest.main()
