"""No data lost: lines the guest reported durable on an ext4 virtio disk are all there after
the power button, and the file system is clean (keel synced and unmounted it)."""

import re
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

from common import BOOT_TIMEOUT, EXIT_TIMEOUT, VmTest

import disk  # tests/vm/disk.py (on the path through common)

LINES_BEFORE_POWERDOWN = 20


need = disk.tool  # a disk tool's path, or a failure naming its package


class Disk(VmTest):
    def test_no_data_lost_on_power_button(self):
        tmp = Path(tempfile.mkdtemp(prefix="keel-disk-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        disk = tmp / "disk.img"
        with open(disk, "wb") as f:
            f.truncate(64 << 20)
        subprocess.run([need("mkfs.ext4"), "-F", "-q", str(disk)], check=True)

        vm = self.boot_ready(disk=disk)
        # virtio_blk may still be probing when the shell comes up: wait for the node.
        out = vm.shell(
            "i=0; while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; "
            "mount -t ext4 /dev/vda /mnt && echo mounted-$((6*7))",
            timeout=BOOT_TIMEOUT,
        )
        self.assertIn("mounted-42", out, f"mount failed: {out!r}; log: {vm.log_path}")
        # Each number is echoed only once its line is on the disk.
        # (busybox runs `sync` in-process: ~150 lines/s under TCG; bounded all the same.)
        vm.send("n=0; while [ $n -lt 100000 ]; do n=$((n+1)); echo line-$n >> /mnt/log; sync; echo durable-$n; done\n")
        vm.wait_for(rf"^durable-{LINES_BEFORE_POWERDOWN}$", timeout=BOOT_TIMEOUT)
        vm.qmp("system_powerdown")
        status = vm.wait_exit(EXIT_TIMEOUT)
        self.assertEqual(status, 0, f"QEMU exit status; log: {vm.log_path}")
        reported = max(int(n) for n in re.findall(r"^durable-(\d+)$", vm.text, re.M))

        # Clean means unmounted cleanly, not only "no errors": e2fsck -n exits 0 even when it
        # skips a pending journal recovery or finds the free counts stale.
        fsck = subprocess.run([need("e2fsck"), "-fn", str(disk)], capture_output=True, text=True)
        fsck_out = fsck.stdout + fsck.stderr
        self.assertEqual(fsck.returncode, 0, f"e2fsck -fn:\n{fsck_out}\nlog: {vm.log_path}")
        self.assertNotRegex(fsck_out, r"recovery|Fix\?", f"e2fsck -fn:\n{fsck_out}\nlog: {vm.log_path}")
        sb = subprocess.run([need("dumpe2fs"), "-h", str(disk)], capture_output=True, text=True).stdout
        self.assertRegex(sb, r"Filesystem state:\s+clean\n", f"not unmounted cleanly; log: {vm.log_path}")
        self.assertNotIn("needs_recovery", sb, f"journal not flushed; log: {vm.log_path}")
        cat = subprocess.run([need("debugfs"), "-R", "cat /log", str(disk)], capture_output=True, text=True)
        lines = cat.stdout.splitlines()
        # Whole lines, in order, none missing: line-1 .. line-M, with M >= every reported n.
        self.assertEqual(lines, [f"line-{i}" for i in range(1, len(lines) + 1)], f"log: {vm.log_path}")
        self.assertGreaterEqual(len(lines), reported, f"lines reported durable are lost; log: {vm.log_path}")
        self.report(f"{reported} lines reported durable, {len(lines)} on disk, fsck clean; "
                    f"powerdown -> exit {vm.since('system_powerdown') * 1000:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    unittest.main()
