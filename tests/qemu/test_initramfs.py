"""tests/vm/mkinitramfs (the repository's defaults over `keelctl image`) without booting: the
same inputs give the same bytes, and the archive holds what the kernel and keel expect."""

import gzip
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from common import KEEL, KEELS, REPO, qemu

KEELCTL = REPO / "target/x86_64-unknown-linux-gnu/release/keelctl"


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
    def build(self, *extra, init=KEEL, check=True):
        if not init.is_file():
            raise AssertionError(f"{init} is missing: run `{'just build' if init == KEEL else 'just build-arm'}`")
        tmp = Path(tempfile.mkdtemp(prefix="keel-cpio-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        out = tmp / "initramfs"
        cmd = [sys.executable, str(REPO / "tests/vm/mkinitramfs"), "--init", str(init), "--out", str(out), "--busybox", *extra]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if not check:
            return r
        self.assertEqual(r.returncode, 0, r.stderr)
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
        # modules.alias: the packed modules' own aliases (for coldplug by modalias).
        alias = by[base + "modules.alias"][7].decode().splitlines()
        self.assertIn("alias fs-ext4 ext4", alias)
        self.assertTrue(all(l.split()[-1] != "evdev" for l in alias[1:]), "an omitted module has no aliases")
        self.assertNotIn("etc/keel/keel.db", by, "no --config: keel's built-in table")

    def test_config(self):
        # --config: compiled to /etc/keel/keel.db, the bytes `keelctl compile` writes.
        config = REPO / "tests/qemu/image/other.toml"
        by = {e[0]: e for e in newc_entries(self.build("--config", str(config), "--modules", ""))}
        compiled = subprocess.run([str(KEELCTL), "compile", str(config), "-o", "-"], capture_output=True, check=True).stdout
        self.assertEqual(by["etc/keel/keel.db"][7], compiled)
        self.assertEqual(by["usr/bin/env"][7], Path("/usr/bin/env").read_bytes(), "the service's program")
        self.assertFalse(any(n.startswith("lib/modules") for n in by), "--modules '': none")
        bad = Path(tempfile.mkdtemp(prefix="keel-cfg-")) / "bad.toml"
        self.addCleanup(shutil.rmtree, bad.parent, True)
        bad.write_text("[service.a]\nargv = [\"/x\"]\nafter = [\"b\"]\n")
        r = self.build("--config", str(bad), check=False)
        self.assertEqual((r.returncode, r.stderr), (1, f"{bad}:1: service \"a\": unknown dependency \"b\"\n"))

    def test_arm64_contents(self):
        # The arm64 keel, fetch-kernel arm64's busybox (its applets read from its own table:
        # it cannot run here for --list) and modules, gpio_keys among them.
        arm_keel = KEELS["aarch64"][0]
        entries = {e[0]: e for e in newc_entries(self.build("--arch", "aarch64", init=arm_keel))}
        self.assertEqual(entries["init"][7], arm_keel.read_bytes())
        kdir = qemu.CACHE / "kernel-arm64"
        self.assertEqual(entries["bin/busybox"][7], (kdir / "busybox").read_bytes())
        applets = {n[4:] for n, e in entries.items() if n.startswith("bin/") and e[7] == b"busybox"}
        self.assertTrue({"sh", "mount", "sync", "ls", "cat"} <= applets, sorted(applets))
        self.assertFalse(applets & {"poweroff", "reboot", "halt", "init"})
        base = f"lib/modules/{(kdir / 'release').read_text().strip()}/"
        dep = entries[base + "modules.dep"][7].decode()
        self.assertIn("kernel/drivers/input/keyboard/gpio_keys.ko:", dep)
        self.assertIn(base + "kernel/drivers/input/keyboard/gpio_keys.ko", entries)
        self.assertNotIn("button.ko", dep, "button is built into the arm64 kernel")
        # Every ELF packed is for aarch64: an x86 keel is refused.
        r = self.build("--arch", "aarch64", init=KEEL, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("is not an aarch64 ELF64", r.stderr)


if __name__ == "__main__":
    unittest.main()
