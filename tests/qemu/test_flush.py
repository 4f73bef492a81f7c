"""The flush at shutdown (sync, unmount, sync) runs in a child while PID 1 keeps serving: it
goes on while the disk makes progress (past keel.shutdown_timeout, up to keel.sync_timeout),
gives up after 10 s without progress, and a second power request means "now". The disk is
virtio-blk on ext4 with QEMU's I/O throttling: `throttling.bps-write` from the start for a
slow disk, QMP `block_set_io_throttle` at run time for a stalled one."""

import hashlib
import re
import shutil
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from common import BOOT_TIMEOUT, VmTest
from test_disk import need

# What the kernel may take to power off once keel calls reboot(2), plus QEMU's exit.
SLACK = 10


class Flush(VmTest):
    def disk(self):
        tmp = Path(tempfile.mkdtemp(prefix="keel-flush-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        disk = tmp / "disk.img"
        with open(disk, "wb") as f:
            f.truncate(128 << 20)
        subprocess.run([need("mkfs.ext4"), "-F", "-q", str(disk)], check=True)
        return disk

    def boot_with_file(self, disk, mib, append, drive_opts=""):
        """Boot with `disk` as /dev/vda (QEMU drive options added), mount it on /mnt and write
        `mib` MiB of random data to /mnt/data without syncing; return its md5 as the guest's
        page cache has it."""
        vm = self.boot(
            append=append,
            extra_args=["-drive", f"file={disk},if=none,id=d1,format=raw{drive_opts}", "-device", "virtio-blk-pci,drive=d1"],
        )
        vm.wait_for(r"keel: ready", timeout=BOOT_TIMEOUT)
        vm.wait_shell(timeout=BOOT_TIMEOUT)
        out = vm.shell(
            "i=0; while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; "
            f"mount -t ext4 /dev/vda /mnt && dd if=/dev/urandom of=/mnt/data bs=1M count={mib} 2>/dev/null && "
            "md5sum /mnt/data && grep -E '^(Dirty|Writeback):' /proc/meminfo",
            timeout=BOOT_TIMEOUT,
        )
        m = re.search(r"^([0-9a-f]{32})  /mnt/data$", out, re.M)
        self.assertIsNotNone(m, f"writing the file failed: {out!r}; log: {vm.log_path}")
        return vm, m.group(1)

    def on_disk_md5(self, disk):
        dump = disk.parent / "data.out"
        subprocess.run([need("debugfs"), "-R", f"dump /data {dump}", str(disk)], check=True, capture_output=True)
        return hashlib.md5(dump.read_bytes()).hexdigest() if dump.exists() else None

    def fsck(self, image, args):
        r = subprocess.run([need("e2fsck"), *args, str(image)], capture_output=True, text=True)
        return r.returncode, r.stdout + r.stderr

    def test_slow_disk_finishes_past_the_shutdown_deadline(self):
        # 3 MiB at 256 KiB/s: ~12 s of writing (more with the journal), past a 2 s shutdown
        # deadline, within the 30 s cap; the disk makes progress all along.
        disk = self.disk()
        vm, md5 = self.boot_with_file(disk, 3, "keel.shutdown_timeout=2", ",throttling.bps-write=262144")
        vm.qmp("system_powerdown")
        status = vm.wait_exit(30 + SLACK + 5)
        took = vm.since("system_powerdown")
        self.assertEqual(status, 0, f"log: {vm.log_path}")
        self.assertTrue(vm.seen(r"keel: syncing: \d+\.\d MB to go"), f"no progress report; log: {vm.log_path}")
        self.assertFalse(vm.seen(r"flush abandoned"), f"log: {vm.log_path}")
        self.assertTrue(vm.seen(r"keel: unmounted /mnt"), f"log: {vm.log_path}")
        self.assertGreater(took, 2 + 5, f"a 12 s flush ended after {took:.1f} s; log: {vm.log_path}")
        code, out = self.fsck(disk, ["-fn"])
        self.assertEqual(code, 0, f"e2fsck -fn:\n{out}")
        self.assertNotRegex(out, r"recovery|Fix\?", f"e2fsck -fn:\n{out}")
        self.assertEqual(self.on_disk_md5(disk), md5, f"the file on disk differs; log: {vm.log_path}")
        self.report(f"3 MiB at 256 KiB/s: power button -> exit {took:.1f} s, every byte on disk")

    def stall(self, vm):
        # A few bytes per second: one 4 KiB write takes over an hour.
        vm.qmp("block_set_io_throttle", device="d1", bps=0, bps_rd=0, bps_wr=4, iops=0, iops_rd=0, iops_wr=0)

    def check_consistent_after_replay(self, disk):
        """A disk cut off mid-flush: the journal replays to a consistent file system. e2fsck
        -fy on a copy replays the journal (as the next mount would) and fixes nothing else;
        then -fn must find it clean."""
        sb = subprocess.run([need("dumpe2fs"), "-h", str(disk)], capture_output=True, text=True).stdout
        self.assertIn("needs_recovery", sb, "the disk was cut off mid-flush: its journal needs replaying")
        copy = disk.parent / "copy.img"
        shutil.copyfile(disk, copy)
        code, out = self.fsck(copy, ["-fy"])
        self.assertIn(code, (0, 1), f"e2fsck -fy (journal replay):\n{out}")
        # Replaying is all -fy may do: orphan or count fixes would mean a broken journal.
        self.assertNotRegex(out, r"Fix\? yes", f"e2fsck -fy:\n{out}")
        code, out = self.fsck(copy, ["-fn"])
        self.assertEqual(code, 0, f"e2fsck -fn after replay:\n{out}")

    def test_stalled_disk_powers_off_after_the_no_progress_bound(self):
        disk = self.disk()
        vm, _ = self.boot_with_file(disk, 4, "keel.shutdown_timeout=2 keel.sync_timeout=120")
        self.stall(vm)
        vm.qmp("system_powerdown")
        status = vm.wait_exit(10 + SLACK + 10)
        took = vm.since("system_powerdown")
        self.assertEqual(status, 0, f"log: {vm.log_path}")
        m = re.search(r"keel: flush abandoned \(no progress for 10 s\): (\S+)[^,]* unfinished, (\d+\.\d) MB not written", vm.text)
        self.assertIsNotNone(m, f"log: {vm.log_path}")
        self.assertEqual(m.group(1), "sync", f"log: {vm.log_path}")
        self.assertGreater(float(m.group(2)), 0, f"log: {vm.log_path}")
        self.assertTrue(vm.seen(r"keel: poweroff$"), f"log: {vm.log_path}")
        self.assertGreaterEqual(took, 10, f"gave up before the bound: {took:.1f} s; log: {vm.log_path}")
        self.assertLess(took, 10 + SLACK, f"log: {vm.log_path}")
        self.check_consistent_after_replay(disk)
        self.report(f"stalled disk: power button -> exit {took:.1f} s; {m.group(2)} MB abandoned; journal replays clean")

    def test_a_second_press_cuts_the_wait_short(self):
        disk = self.disk()
        vm, _ = self.boot_with_file(disk, 4, "keel.shutdown_timeout=2 keel.sync_timeout=120")
        self.stall(vm)
        vm.qmp("system_powerdown")
        vm.wait_for(r"keel: syncing: \d+\.\d MB to go", timeout=10)
        # PID 1 still serves while the child is stuck in sync: the second press is heard.
        vm.qmp("system_powerdown")
        second = vm.marks["system_powerdown"]
        status = vm.wait_exit(SLACK + 5)
        self.assertEqual(status, 0, f"log: {vm.log_path}")
        # (One press is two requests, its ACPI event and its evdev key: either comes first.)
        self.assertTrue(vm.seen(r"keel: poweroff requested \((ACPI power button|power key)\) during the flush: poweroff now"), f"log: {vm.log_path}")
        self.assertTrue(vm.seen(r"keel: flush abandoned \(a second request\): sync unfinished, \d+\.\d MB not written"), f"log: {vm.log_path}")
        self.assertFalse(vm.seen(r"no progress for 10 s"), f"log: {vm.log_path}")
        took = vm.marks["exit"] - second
        self.assertLess(took, 4, f"second press -> exit {took:.1f} s; log: {vm.log_path}")
        self.check_consistent_after_replay(disk)
        self.report(f"second press -> exit {took * 1000:.0f} ms")


if __name__ == "__main__":
    unittest.main()
