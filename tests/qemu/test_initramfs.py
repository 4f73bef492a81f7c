"""tests/vm/mkinitramfs without booting: the same inputs give the same bytes, and the archive
holds what the kernel and keel expect."""

import gzip
import stat
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from common import KEEL, REPO, qemu


def newc_entries(data):
    """(name, mode, uid, gid, mtime, ino, rdev, body) for each entry of a newc archive."""
    pos, out = 0, []
    while True:
        assert data[pos : pos + 6] == b"070701", f"bad magic at {pos}"
        f = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        ino, mode, uid, gid, _nlink, mtime, size, _, _, rmaj, rmin, namesize, _ = f
        pos += 110
        name = data[pos : pos + namesize - 1].decode()
        pos = (pos + namesize + 3) & ~3
        body = data[pos : pos + size]
        pos = (pos + size + 3) & ~3
        if name == "TRAILER!!!":
            return out
        out.append((name, mode, uid, gid, mtime, ino, (rmaj, rmin), body))


class Initramfs(unittest.TestCase):
    def build(self, *extra):
        if not KEEL.is_file():
            raise AssertionError(f"{KEEL} is missing: run `just build`")
        tmp = Path(tempfile.mkdtemp(prefix="keel-cpio-"))
        out = tmp / "initramfs"
        cmd = [sys.executable, str(REPO / "tests/vm/mkinitramfs"), "--init", str(KEEL), "--out", str(out), "--busybox", *extra]
        subprocess.run(cmd, check=True, capture_output=True)
        data = out.read_bytes()
        out.unlink()
        tmp.rmdir()
        return data

    def test_deterministic(self):
        self.assertEqual(self.build(), self.build())
        self.assertEqual(self.build("--compress", "gzip"), self.build("--compress", "gzip"))

    def test_contents(self):
        data = self.build("--omit-module", "evdev")
        self.assertEqual(gzip.decompress(self.build("--omit-module", "evdev", "--compress", "gzip")), data)
        entries = newc_entries(data)
        names = [e[0] for e in entries]
        self.assertEqual(names, sorted(names, key=lambda n: n.split("/")))
        self.assertEqual([e[5] for e in entries], list(range(1, len(entries) + 1)))
        self.assertTrue(all(e[2] == e[3] == e[4] == 0 for e in entries), "uid, gid and mtime must be 0")
        by = {e[0]: e for e in entries}
        self.assertEqual(by["init"][7], KEEL.read_bytes())
        for applet in ("poweroff", "reboot", "halt"):
            self.assertTrue(stat.S_ISLNK(by[f"sbin/{applet}"][1]))
            self.assertEqual(by[f"sbin/{applet}"][7], b"/init")
            self.assertNotIn(f"bin/{applet}", by, "busybox must not shadow keel's applets")
        self.assertNotIn("bin/init", by)
        self.assertEqual(by["dev/console"][6], (5, 1))
        self.assertEqual(by["dev/null"][6], (1, 3))
        for d in ("proc", "sys", "dev", "run", "tmp", "root", "etc", "mnt"):
            self.assertTrue(stat.S_ISDIR(by[d][1]), d)
        self.assertEqual(by["bin/sh"][7], b"busybox")
        # Modules: what was asked and its dependencies, modules.dep naming only those.
        release = (qemu.CACHE / "kernel" / "release").read_text().strip()
        base = f"lib/modules/{release}/"
        mods = {n[len(base) :] for n in names if n.startswith(base) and n.endswith(".ko")}
        self.assertIn("kernel/fs/ext4/ext4.ko", mods)
        self.assertIn("kernel/fs/jbd2/jbd2.ko", mods)
        self.assertIn("kernel/drivers/virtio/virtio_ring.ko", mods)
        self.assertNotIn("kernel/drivers/input/evdev.ko", mods)
        dep = by[base + "modules.dep"][7].decode().splitlines()
        self.assertEqual({l.split(":")[0] for l in dep}, mods)
        for line in dep:
            for d in line.split(":")[1].split():
                self.assertIn(d, mods, line)


if __name__ == "__main__":
    unittest.main()
