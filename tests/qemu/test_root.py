"""Booting a real disk: keel as the initramfs's /init finds the root named by root= (UUID=,
PARTUUID= on GPT and MBR, LABEL=, /dev/NAME), checks it with the initramfs's fsck.ext4,
mounts it as rootfstype=/ro/rw say, switches to it (the initramfs freed) and execs its
init: keel again (the release binary, as /sbin/init), which reads the root's own
/etc/keel/keel.db (tests/qemu/root.toml compiled) and runs its services and its
[mount.NAME] table. Every failure is one console line and the emergency shell.

Disk images are made on the host (tests/vm/disk.py: mkfs.ext4 -d, sfdisk, mkfs.vfat)."""

import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from common import BOOT_TIMEOUT, EXIT_TIMEOUT, OUT, REPO, VmTest, initramfs, qemu  # noqa: F401

import disk  # tests/vm/disk.py (on the path through common)

KEEL_ROOT = Path(os.environ.get("KEEL_BIN", REPO / "target/x86_64-unknown-linux-musl/release/keel"))
ROOT_TOML = REPO / "tests/qemu/root.toml"
# The initramfs loads vfat for the root's [mount.boot] (the root has no modules of its own;
# vfat's default codepage and iocharset are modules too, and no modprobe is there to load them).
MODULES = "virtio_pci virtio_blk virtio_console ext4 crc32c_generic button evdev vmw_vsock_virtio_transport vfat nls_cp437 nls_ascii"
APPEND = "keel.modules=vfat,nls_cp437,nls_ascii"
# A file of this many MiB in the initramfs shows whether its RAM is given back.
FILLER_MIB = 32

UUID = "3d4e5f60-7182-493a-a4b5-c6d7e8f90a1b"
GPT_ROOT = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
GPT_BOOT = "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e"
MBR_ID = "0x5eed1234"


def root_initramfs(variant="root", files=()):
    return initramfs(variant, extra=["--modules", MODULES], files=files)


class Root(VmTest):
    def setUp(self):
        super().setUp()
        if not KEEL_ROOT.is_file():
            raise AssertionError(f"{KEEL_ROOT} is missing: run `just build`")
        self.tmp = Path(tempfile.mkdtemp(prefix="keel-root-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)

    # -- images ---------------------------------------------------------------------------

    def tree(self, root_id, without=()):
        db = disk.compile_config(ROOT_TOML.read_text())
        # /etc/not-elf*: executable, but no program (exec says ENOEXEC).
        files = {"etc/root-id": root_id, "etc/not-elf*": "not a program\n"}
        return disk.root_tree(self.tmp / f"tree-{root_id}", init=KEEL_ROOT, db=db, files=files, without=without)

    def whole_disk(self, root_id="root-uuid", without=(), **ext4):
        img = self.tmp / "disk.img"
        disk.blank(img, 32)
        disk.ext4(img, self.tree(root_id, without), uuid=UUID, label="keel-uuid", **ext4)
        return img

    def gpt_disk(self):
        img = self.tmp / "gpt.img"
        disk.blank(img, 64)
        boot, root = disk.partition(img, "gpt", [
            disk.Part(8, disk.GPT_ESP, uuid=GPT_BOOT, name="boot"),
            disk.Part(40, disk.GPT_LINUX, uuid=GPT_ROOT, name="root"),
        ])  # fmt: skip
        disk.vfat(img, boot, label="KEEL-BOOT")
        disk.ext4(img, self.tree("root-gpt"), root, label="keel-gpt")
        return img

    def mbr_disk(self, root_id="root-mbr"):
        img = self.tmp / "mbr.img"
        disk.blank(img, 48)
        (root,) = disk.partition(img, "dos", [disk.Part(40, disk.MBR_LINUX)], disk_id=MBR_ID)
        disk.ext4(img, self.tree(root_id), root, label="keel-mbr")
        return img, root

    def filesystem_of(self, img, part):
        """The partition's bytes as a file of their own, for e2fsck and debugfs."""
        out = self.tmp / "part.img"
        with open(img, "rb") as src, open(out, "wb") as dst:
            src.seek(part.start)
            dst.write(src.read(part.size))
        return out

    def fsck_clean(self, image):
        r = subprocess.run([disk.tool("e2fsck"), "-fn", str(image)], capture_output=True, text=True)
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, f"e2fsck -fn:\n{out}")
        self.assertNotRegex(out, r"recovery|Fix\?", f"e2fsck -fn:\n{out}")

    # -- boots ----------------------------------------------------------------------------

    def boot_root(self, img, append, initrd=None):
        """Boot until the root's keel answers on its console shell."""
        vm = self.boot(initrd or root_initramfs(), disk=img, append=f"{append} {APPEND}")
        vm.wait_for(r"keel: root: initramfs freed", timeout=BOOT_TIMEOUT)
        vm.wait_for(r"keel: version .* starting as PID 1", timeout=BOOT_TIMEOUT)
        vm.wait_shell(timeout=BOOT_TIMEOUT)
        return vm

    def emergency(self, img, append, line, initrd=None, **kw):
        """Boot until the emergency shell answers, after `line` (a regex) on the console."""
        vm = self.boot(initrd or root_initramfs(), disk=img, append=f"{append} {APPEND}", **kw)
        vm.wait_for(line, timeout=BOOT_TIMEOUT)
        vm.wait_for(r"keel: emergency: only the rescue services run \(1\)", timeout=10)
        vm.wait_shell(timeout=BOOT_TIMEOUT)
        out = vm.shell("ls /init >/dev/null && echo still-the-initramfs; grep -c ' /sysroot ' /proc/mounts")
        self.assertIn("still-the-initramfs", out, f"log: {vm.log_path}")
        self.assertRegex(out, r"(?m)^0$", f"the root stays unmounted; log: {vm.log_path}")
        self.assertFalse(vm.seen(r"keel: version .* starting as PID 1", since=vm.text.find("keel: ready")), f"log: {vm.log_path}")
        return vm

    def root_mount(self, vm):
        """The `/` line of /proc/mounts: (device, type, options)."""
        out = vm.shell("grep ' / ' /proc/mounts")
        m = re.search(r"^(\S+) / (\S+) (\S+) ", out, re.M)
        self.assertIsNotNone(m, f"no / in /proc/mounts: {out!r}; log: {vm.log_path}")
        return m.groups()

    def unevictable_kib(self, vm):
        """ramfs pages are unevictable: what an initramfs given root= (ramfs) still holds."""
        out = vm.shell("grep Unevictable: /proc/meminfo")
        return int(re.search(r"Unevictable:\s+(\d+) kB", out).group(1))

    def filler(self):
        path = OUT / "filler.bin"
        if not path.exists() or path.stat().st_size != FILLER_MIB << 20:
            OUT.mkdir(parents=True, exist_ok=True)
            path.write_bytes(os.urandom(FILLER_MIB << 20))
        return root_initramfs("root-filler", files=[f"{path}:/filler"])

    # -- tests ----------------------------------------------------------------------------

    def test_uuid_root_runs_its_own_init_and_the_initramfs_is_freed(self):
        vm = self.boot_root(self.whole_disk(), f"root=UUID={UUID} rw", initrd=self.filler())
        freed = vm.wait_for(r"keel: root: initramfs freed: (\d+) entries, (\d+) KiB \(0 left\); exec /sbin/init", since=0)
        self.assertGreaterEqual(int(freed.group(2)), FILLER_MIB << 10, f"the filler was not deleted; log: {vm.log_path}")
        self.assertTrue(vm.seen(r"keel: mounted /dev/vda on /sysroot \(ext4, rw\)"), f"log: {vm.log_path}")
        vm.wait_for(r"hello\| hello from root-uuid on ext2/ext3", since=0, timeout=10)
        self.assertEqual(self.root_mount(vm)[:2], ("/dev/vda", "ext4"))
        self.assertRegex(self.root_mount(vm)[2], r"^rw,")
        out = vm.shell("ls /")
        self.assertNotRegex(out, r"\b(init|filler)\b", f"initramfs files on the new root: {out!r}")
        kib = self.unevictable_kib(vm)
        self.assertLess(kib, (FILLER_MIB << 10) // 4, f"Unevictable {kib} kB: the initramfs still in RAM; log: {vm.log_path}")
        # The root's own table: /boot (by LABEL) is not on this disk, so what needs it stays down.
        self.assertTrue(vm.seen(r"keel: mount boot: no device LABEL=KEEL-BOOT after 2 s"), f"log: {vm.log_path}")
        self.assertTrue(vm.seen(r"keel: mounted tmpfs on /scratch \(tmpfs, rw\)"), f"log: {vm.log_path}")
        self.assertFalse(vm.seen(r"boot-user sees"), f"boot-user ran without /boot; log: {vm.log_path}")
        self.report(f"{freed.group(1)} entries ({freed.group(2)} KiB) freed, Unevictable {kib} kB on the new root")

    def test_partuuid_on_gpt_read_only_with_the_mounts_table(self):
        vm = self.boot_root(self.gpt_disk(), f"root=PARTUUID={GPT_ROOT.upper()} ro rootfstype=ext4")
        self.assertTrue(vm.seen(r"keel: mounted /dev/vda2 on /sysroot \(ext4, ro\)"), f"log: {vm.log_path}")
        dev, fstype, opts = self.root_mount(vm)
        self.assertEqual((dev, fstype), ("/dev/vda2", "ext4"))
        self.assertRegex(opts, r"^ro,", f"log: {vm.log_path}")
        out = vm.shell("touch /x 2>&1; echo done")
        self.assertIn("Read-only file system", out)
        vm.wait_for(r"hello\| hello from root-gpt", since=0, timeout=10)
        self.assertTrue(vm.seen(r"keel: mounted /dev/vda1 on /boot \(vfat, rw\)"), f"log: {vm.log_path}")
        vm.wait_for(r"boot-user\| boot-user sees 1 vfat /boot", since=0, timeout=10)

    def test_label_on_mbr_with_rootdelay_and_a_type_list(self):
        img, _ = self.mbr_disk("root-label")
        # ext2 is tried first and refuses a journaled filesystem: ext4 mounts it.
        vm = self.boot_root(img, "root=LABEL=keel-mbr rootfstype=ext2,ext4 rootdelay=2 rw")
        said = vm.guest_time(r"keel: root: LABEL=keel-mbr")
        mounted = vm.guest_time(r"keel: mounted /dev/vda1 on /sysroot \(ext4, rw\)")
        self.assertIsNotNone(mounted, f"log: {vm.log_path}")
        self.assertGreaterEqual(mounted - said, 2.0, f"rootdelay=2 not waited; log: {vm.log_path}")
        vm.wait_for(r"hello\| hello from root-label", since=0, timeout=10)
        self.assertEqual(self.root_mount(vm)[:2], ("/dev/vda1", "ext4"))

    def test_power_button_with_a_writer_on_the_root(self):
        img, part = self.mbr_disk()
        vm = self.boot_root(img, f"root=PARTUUID={MBR_ID[2:]}-01 rw")
        vm.send("n=0; while [ $n -lt 100000 ]; do n=$((n+1)); echo line-$n >> /root/log; sync; echo durable-$n; done\n")
        vm.wait_for(r"^durable-20$", timeout=BOOT_TIMEOUT)
        vm.qmp("system_powerdown")
        self.assertEqual(vm.wait_exit(EXIT_TIMEOUT), 0, f"QEMU exit status; log: {vm.log_path}")
        # The root cannot go while processes stand on it: umount(2) of `/` remounts it read-only.
        self.assertTrue(vm.seen(r"keel: (unmounted /|remounted / read-only)$"), f"log: {vm.log_path}")
        reported = max(int(n) for n in re.findall(r"^durable-(\d+)$", vm.text, re.M))
        fs = self.filesystem_of(img, part)
        self.fsck_clean(fs)
        cat = subprocess.run([disk.tool("debugfs"), "-R", "cat /root/log", str(fs)], capture_output=True, text=True)
        lines = cat.stdout.splitlines()
        self.assertEqual(lines, [f"line-{i}" for i in range(1, len(lines) + 1)], f"log: {vm.log_path}")
        self.assertGreaterEqual(len(lines), reported, f"lines reported durable are lost; log: {vm.log_path}")
        self.report(f"{reported} lines reported durable, {len(lines)} on the root, e2fsck -fn clean")

    def test_a_disk_that_comes_late_is_found_by_its_uevent(self):
        img = self.whole_disk()
        # The drive is there from the start, its device is plugged in later (PCIe hotplug).
        late = ["-drive", f"file={img},if=none,id=late,format=raw", "-device", "pcie-root-port,id=rp1,chassis=1"]
        vm = self.boot(root_initramfs(), append=f"root=UUID={UUID} rootwait=60 {APPEND}", extra_args=late)
        vm.wait_for(r"keel: root: UUID=\S+ \(waiting up to 60 s\)", timeout=BOOT_TIMEOUT)
        vm.wait_for(r"keel: ready", timeout=BOOT_TIMEOUT)
        vm.qmp("device_add", driver="virtio-blk-pci", bus="rp1", drive="late", id="vlate")
        vm.wait_for(r"keel: mounted /dev/vda on /sysroot \(ext4, rw\)", timeout=BOOT_TIMEOUT)
        # Found at once, by the uevent: the next look by time would be at the 60 s deadline.
        took = time.monotonic() - vm.marks["device_add"]
        self.assertLess(took, 20, f"log: {vm.log_path}")
        vm.wait_for(r"hello\| hello from root-uuid", timeout=BOOT_TIMEOUT)
        self.report(f"hot-added disk mounted {took:.1f} s after device_add (rootwait=60)")

    def test_missing_root_is_the_emergency_shell_within_the_wait(self):
        vm = self.emergency(None, "root=UUID=0e8b1c4a-7f3d-4b6e-9a21-5c3d2e1f0a9b rootwait=3",
                            r"keel: root: no device UUID=0e8b1c4a-7f3d-4b6e-9a21-5c3d2e1f0a9b after 3 s", initrd=self.filler())  # fmt: skip
        waited = vm.guest_time(r"keel: root: no device") - vm.guest_time(r"keel: root: UUID=")
        self.assertTrue(2.9 <= waited <= 5, f"waited {waited:.1f} s for rootwait=3; log: {vm.log_path}")
        # The initramfs is all still there: the control for the freed-RAM check above.
        kib = self.unevictable_kib(vm)
        self.assertGreaterEqual(kib, FILLER_MIB << 10, f"Unevictable {kib} kB with the initramfs in place")
        self.report(f"emergency after {waited:.1f} s; Unevictable {kib} kB on the initramfs")

    def test_the_loop_serves_the_power_button_while_it_waits(self):
        vm = self.boot(root_initramfs(), append=f"root=LABEL=nowhere rootwait=120 {APPEND}")
        vm.wait_for(r"keel: root: LABEL=nowhere \(waiting up to 120 s\)", timeout=BOOT_TIMEOUT)
        vm.wait_for(r"keel: ready", timeout=BOOT_TIMEOUT)
        vm.qmp("system_powerdown")
        self.assertEqual(vm.wait_exit(EXIT_TIMEOUT), 0, f"log: {vm.log_path}")
        self.assertLess(vm.since("system_powerdown"), 15, f"log: {vm.log_path}")
        self.assertFalse(vm.seen(r"keel: emergency"), f"log: {vm.log_path}")

    def test_corrupt_superblock_is_a_clear_error(self):
        img = self.whole_disk()
        with open(img, "r+b") as f:
            f.seek(1024 + 0x78)  # the volume name: the superblock's checksum no longer matches
            f.write(b"X")
        # keel does not verify superblock checksums (src/probe): the kernel's ext4 does, and
        # refuses the mount with EBADMSG (74).
        vm = self.emergency(img, "root=/dev/vda rootwait=2", r"keel: mount /dev/vda on /sysroot \(ext4\): errno 74")
        vm.close()
        with open(img, "r+b") as f:
            f.seek(1024 + 0x38)  # the magic: no filesystem keel knows
            f.write(b"\0\0")
        self.emergency(img, "root=/dev/vda rootwait=2", r"keel: mount /dev/vda: no filesystem keel recognises .*: name its type",
                       name=f"{self.id().split('.', 1)[-1]}-magic")

    def test_other_failures_are_one_line_and_the_emergency_shell(self):
        img = self.whole_disk()
        cases = [
            ("root=sda1", r"keel: root: root=sda1 is not UUID=, LABEL=, PARTUUID= or an absolute path"),
            # No xfs in this initramfs: the kernel does not know the type (ENODEV).
            ("root=/dev/vda rootfstype=xfs", r"keel: mount /dev/vda on /sysroot \(xfs\): errno 19"),
            (f"root=UUID={UUID} init=/etc/root-id",
             r"keel: root: switch_root: no executable init on the new root /etc/root-id: EACCES; staying on the initramfs"),
            (f"root=UUID={UUID} init=/sbin/nothing",
             r"keel: root: switch_root: no executable init on the new root /sbin/nothing: ENOENT; staying on the initramfs"),
        ]  # fmt: skip
        for n, (append, line) in enumerate(cases):
            with self.subTest(append=append):
                vm = self.emergency(img, append, line, name=f"{self.id().split('.', 1)[-1]}-{n}")
                vm.close()

    def test_an_init_that_does_not_run_leaves_keel_as_pid1_on_the_new_root(self):
        vm = self.boot(root_initramfs(), disk=self.whole_disk(), append=f"root=UUID={UUID} rw init=/etc/not-elf {APPEND}")
        vm.wait_for(r"keel: root: initramfs freed: .*; exec /etc/not-elf", timeout=BOOT_TIMEOUT)
        vm.wait_for(r"keel: root: switch_root: exec /etc/not-elf: ENOEXEC; the initramfs is gone: keel stays PID 1 on the new root", timeout=10)
        vm.wait_for(r"keel: emergency: only the rescue services run \(1\)", timeout=10)
        vm.wait_shell(timeout=BOOT_TIMEOUT)
        self.assertEqual(self.root_mount(vm)[:2], ("/dev/vda", "ext4"))
        out = vm.shell("cat /etc/root-id; echo")
        self.assertIn("root-uuid", out, "the shell runs on the new root")
        vm.qmp("system_powerdown")
        self.assertEqual(vm.wait_exit(EXIT_TIMEOUT), 0, f"PID 1 still answers the power button; log: {vm.log_path}")

    def test_a_required_mount_that_fails_is_the_emergency_path(self):
        # A read-only root without /scratch: the required tmpfs there cannot be mounted.
        img = self.whole_disk(without=("scratch",))
        vm = self.boot_root(img, f"root=UUID={UUID} ro")
        vm.wait_for(r"keel: mount tmpfs on /scratch \(tmpfs\): ENOENT", since=0, timeout=10)
        vm.wait_for(r"keel: mount scratch: required", timeout=5)
        vm.wait_for(r"keel: emergency: only the rescue services run \(1\)", timeout=5)
        self.assertTrue(vm.seen(r"keel: svc hello: waiting -> stopped"), f"log: {vm.log_path}")
        self.assertFalse(vm.seen(r"hello\| hello from"), f"a non-rescue service ran; log: {vm.log_path}")

    def test_fsck_fixes_what_it_can_then_the_root_boots(self):
        img = self.whole_disk()
        # The root directory's link count wrong, and the filesystem marked not clean.
        disk.debugfs(img, "sif <2> links_count 7", "ssv state 0")
        vm = self.boot_root(img, f"root=UUID={UUID} rw", initrd=self.fsck_initramfs())
        self.assertTrue(vm.seen(r"keel: root: checking /dev/vda with /sbin/fsck.ext4"), f"log: {vm.log_path}")
        self.assertTrue(vm.seen(r"Inode 2 ref count is 7, should be \d+\.\s+FIXED"), f"log: {vm.log_path}")
        self.assertTrue(vm.seen(r"keel: root: fsck /dev/vda: errors fixed \(exit 1\)"), f"log: {vm.log_path}")
        vm.qmp("system_powerdown")
        self.assertEqual(vm.wait_exit(EXIT_TIMEOUT), 0)
        self.fsck_clean(img)

    def test_fsck_errors_left_mean_no_mount(self):
        img = self.tmp / "dup.img"
        disk.blank(img, 32)
        tree = self.tree("root-dup")
        for name in ("a", "b"):
            (tree / name).write_bytes(os.urandom(8192))
        # Block maps (no extents), so one block can be given to two files: e2fsck -a cannot
        # settle who owns it and stops ("UNEXPECTED INCONSISTENCY"), exit 4.
        disk.ext4(img, tree, uuid=UUID, features="^extent,^64bit")
        block = subprocess.run([disk.tool("debugfs"), "-R", "bmap /a 0", str(img)], capture_output=True, text=True).stdout.strip()
        disk.debugfs(img, f"sif /b block[0] {block}", "ssv state 0")
        self.emergency(img, f"root=UUID={UUID} rw", r"keel: root: fsck /dev/vda: errors left uncorrected \(exit 4\): not mounting it",
                       initrd=self.fsck_initramfs())  # fmt: skip

    def fsck_initramfs(self):
        """The initramfs with the host's e2fsck as /sbin/fsck.ext4 (and its libraries)."""
        return root_initramfs("root-fsck", files=disk.dynamic_program(disk.tool("e2fsck"), "/sbin/fsck.ext4"))


if __name__ == "__main__":
    unittest.main()
