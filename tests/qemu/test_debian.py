"""A real distribution's root: a Debian bookworm root made by `debootstrap --variant=minbase`
(tests/vm/fetch-debian-root, cached), with rsyslog and dropbear, boots with keel as its init.

The image is that tree (hard links, nothing of it changed) plus keel at /sbin/keel and the
root's own /etc/keel/keel.db (tests/qemu/debian.toml compiled), as ext4 by `mkfs.ext4 -d`.
minbase has no init at all (no /sbin/init): `init=/sbin/keel` names keel, and nothing of
Debian's is replaced. The initramfs is keel with its own module list and busybox; it finds
the root by UUID, switches to it and frees itself, so every program that runs after that is
the root's own, dynamically linked against the root's glibc through the root's loader:
rsyslogd (ready by sd_notify, its rules from the root's /etc/rsyslog.conf), dropbear
(after rsyslog, logging through it), Debian's /bin/sh (dash) on the console.

The power button then stops them, dropbear first (its last line goes through rsyslog, still
running), and the image afterwards is clean for `e2fsck -fn` and holds what was written: a
file the shell wrote and fsync'd, and the lines rsyslog wrote without ever fsyncing them.
"""

import re
import secrets
import shutil
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from common import BOOT_TIMEOUT, EXIT_TIMEOUT, KEEL, REPO, VmTest, initramfs

import disk  # tests/vm/disk.py (on the path through common)
from test_image import keelctl

DEBIAN_TOML = REPO / "tests/qemu/debian.toml"
UUID = "6b1f0c2d-3e4a-4b5c-8d9e-0f1a2b3c4d5e"
# Room on the root beyond the tree: logs, host keys, the test's files.
SLACK_MIB = 64
LOADER = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6"


class DebianRoot(VmTest):
    def setUp(self):
        super().setUp()
        if not KEEL.is_file():
            raise AssertionError(f"{KEEL} is missing: run `just build`")
        self.tmp = Path(tempfile.mkdtemp(prefix="keel-debian-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def image(self):
        """The ext4 image of the cached Debian root plus keel and its keel.db: (path, notes)."""
        t = time.monotonic()
        base = disk.debian_root()
        fetched = time.monotonic() - t
        info = dict(line.split(" ", 1) for line in (base.parent / "info").read_text().splitlines())
        db = disk.compile_config(DEBIAN_TOML.read_text())
        t = time.monotonic()
        tree = disk.overlay_tree(base, self.tmp / "tree", {"sbin/keel*": KEEL, "etc/keel/keel.db": db})
        self.assertFalse((tree / "sbin/init").exists(), "minbase has an init after all: the test's premise is wrong")
        tree_mib = int(disk.run("du", "-sk", tree).split()[0]) >> 10
        img = self.tmp / "debian.img"
        disk.blank(img, tree_mib + SLACK_MIB)
        disk.ext4(img, tree, uuid=UUID, label="debian")
        made = time.monotonic() - t
        notes = (f"root {info['tree_kib']} KiB in {info['packages']} packages (debootstrap took"
                 f" {info['debootstrap_seconds']} s when it was made; fetch-debian-root {fetched:.1f} s"
                 f" now), image {tree_mib + SLACK_MIB} MiB made in {made:.1f} s")  # fmt: skip
        return img, notes

    def keelctl_on(self, vm, *args):
        r = keelctl("--unix", vm.console_path, "--timeout", "10", *args, check=False)
        self.assertEqual(r.returncode, 0, f"keelctl {' '.join(args)}: {r.stderr.decode()}; log: {vm.log_path}")
        return r.stdout.decode()

    def wait_in_shell(self, vm, condition, what, timeout=30):
        """Run the shell test `condition` until it holds (the guest's own loop)."""
        out = vm.shell(f"n=0; until {condition}; do n=$((n+1)); [ $n -gt {timeout * 5} ] && break; sleep 0.2; done;"
                       f" {condition} && printf 'held-%s\\n' {what}", timeout=timeout + 10)  # fmt: skip
        self.assertIn(f"held-{what}", out, f"{what} did not come within {timeout} s; log: {vm.log_path}")

    def test_debian_root_runs_its_daemons_and_powers_off_clean(self):
        img, notes = self.image()
        vm = self.boot(initramfs("debian"), disk=img, virtio_console=True, append=f"root=UUID={UUID} rootwait init=/sbin/keel")
        vm.wait_for(r"keel: mounted /dev/vda on /sysroot \(ext4, rw\)", timeout=BOOT_TIMEOUT)
        vm.wait_for(r"keel: root: initramfs freed: .*; exec /sbin/keel", timeout=BOOT_TIMEOUT)
        switched = vm.cursor
        # The keel on the root reads the root's configuration, not the built-in table.
        vm.wait_for(r"keel: version .* starting as PID 1", timeout=BOOT_TIMEOUT)
        vm.wait_for(r"keel: config /etc/keel/keel\.db: 3 services", timeout=BOOT_TIMEOUT)
        # rsyslogd says READY=1 itself (starting -> ready); dropbear waits for that.
        rsyslog_ready = vm.wait_for(r"keel: svc rsyslog: starting -> ready", timeout=BOOT_TIMEOUT, since=switched).start()
        dropbear = vm.wait_for(r"keel: svc dropbear: waiting -> ready", timeout=BOOT_TIMEOUT, since=switched).start()
        self.assertLess(rsyslog_ready, dropbear, f"dropbear started before rsyslog was ready; log: {vm.log_path}")
        vm.wait_shell(timeout=BOOT_TIMEOUT)

        # keelctl over the root's own debug channel.
        table = self.keelctl_on(vm, "services")
        rows = {m[0]: m[1:] for m in re.findall(r"^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)$", table, re.M) if m[0] != "NAME"}
        self.assertEqual({name: row[0] for name, row in rows.items()},
                         {"shell": "ready", "rsyslog": "ready", "dropbear": "ready"}, table)  # fmt: skip
        self.assertIn("/etc/keel/keel.db", self.keelctl_on(vm, "status"), "status names the root's config")

        # The console shell is Debian's dash; the daemons are the root's programs, dynamically
        # linked: the root's loader and glibc are mapped (the initramfs had neither). Each
        # answer is tagged, as the shell's `# ` prompt may come before it on its line.
        out = vm.shell("echo sh=$(readlink /proc/$$/exe) debian=$(cat /etc/debian_version) host=$(hostname)")
        self.assertIn("sh=/usr/bin/dash ", out, f"the console shell; log: {vm.log_path}")
        self.assertRegex(out, r" debian=12\.\d+ ", "the root's Debian release")
        self.assertIn(" host=keel-debian", out, "[system] hostname of the root's config")
        for name, exe in (("rsyslog", "/usr/sbin/rsyslogd"), ("dropbear", "/usr/sbin/dropbear")):
            pid = rows[name][1]
            out = vm.shell(f"echo exe=$(readlink /proc/{pid}/exe) glibc=$(grep -c -e ' {LOADER}$' -e ' {LIBC}$' /proc/{pid}/maps)")
            self.assertIn(f"exe={exe} ", out, f"{name}'s pid {pid}; log: {vm.log_path}")
            maps = re.search(r"glibc=(\d+)", out)
            self.assertTrue(maps and int(maps.group(1)) >= 2, f"{name} maps no glibc of the root: {out!r}")

        # rsyslog does its job from its own configuration: a logger(1) line reaches
        # /var/log/syslog (util-linux's logger, to /dev/log).
        token = secrets.token_hex(6)
        vm.shell(f"logger -t keeltest line-{token}")
        self.wait_in_shell(vm, f"grep -q 'keel-debian keeltest: line-{token}' /var/log/syslog", "syslog")
        # dropbear answers on port 22 (bash's /dev/tcp, coreutils' timeout: minbase has both),
        # and logs through rsyslog (authpriv: /var/log/auth.log): its start, then this client.
        out = vm.shell("timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/22; head -c 21 <&3'; echo")
        self.assertIn("SSH-2.0-dropbear_2022", out, f"no SSH banner on port 22; log: {vm.log_path}")
        dropbear_pid = rows["dropbear"][1]
        self.wait_in_shell(vm, f"grep -q 'dropbear\\[{dropbear_pid}\\]: Not backgrounding' /var/log/auth.log", "auth-start")
        self.wait_in_shell(vm, "grep -q 'Child connection from 127.0.0.1' /var/log/auth.log", "auth-client")

        # A file written and fsync'd (coreutils' `sync FILE`), then the power button.
        out = vm.shell(f"echo fsynced-{token} > /root/keel-test && sync /root/keel-test && echo synced-$?")
        self.assertIn("synced-0", out, f"log: {vm.log_path}")
        vm.qmp("system_powerdown")
        self.assertEqual(vm.wait_exit(EXIT_TIMEOUT), 0, f"QEMU exit status; log: {vm.log_path}")
        self.assertEqual(vm.shutdown_reason(), "guest-shutdown", f"log: {vm.log_path}")
        took = vm.since("system_powerdown")
        stops = [m.group(1) for m in re.finditer(r"keel: svc (rsyslog|dropbear): \w+ -> stopped", vm.text)]
        self.assertEqual(stops, ["dropbear", "rsyslog"], f"stop order (dependents first); log: {vm.log_path}")
        self.assertTrue(vm.seen(r"keel: (unmounted /|remounted / read-only)$"), f"log: {vm.log_path}")

        r = subprocess.run([disk.tool("e2fsck"), "-fn", str(img)], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, f"e2fsck -fn:\n{r.stdout}{r.stderr}")
        self.assertNotRegex(r.stdout + r.stderr, r"recovery|Fix\?", f"e2fsck -fn:\n{r.stdout}{r.stderr}")
        self.assertEqual(self.cat(img, "/root/keel-test"), f"fsynced-{token}\n")
        # rsyslog does not fsync its files (`-/var/log/syslog`): its lines are on the disk
        # because keel stopped it (SIGTERM, exit 0) before the final sync and unmount.
        self.assertTrue(vm.seen(r"keel: svc rsyslog: pid \d+ ended \(exit 0\)"), f"log: {vm.log_path}")
        syslog = self.cat(img, "/var/log/syslog")
        self.assertIn(f"keel-debian keeltest: line-{token}", syslog, f"/var/log/syslog ends: {syslog[-600:]!r}")
        # dropbear's last line, logged as keel's SIGTERM ended it: rsyslog was still there to
        # write it (dependents stop first) and it reached the disk.
        auth = self.cat(img, "/var/log/auth.log")
        self.assertIn(f"dropbear[{dropbear_pid}]: Early exit: Terminated by signal", auth, f"/var/log/auth.log: {auth!r}")
        self.report(f"{notes}; power button -> QEMU exit {took:.1f} s, e2fsck -fn clean")

    def cat(self, img, path):
        r = subprocess.run([disk.tool("debugfs"), "-R", f"cat {path}", str(img)], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout


if __name__ == "__main__":
    unittest.main()
