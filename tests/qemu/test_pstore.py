"""The previous boot from pstore (src/log/pstore.rs): ramoops in 1 MiB of RAM the kernel
leaves alone (memmap=), in one QEMU that lives across the guest's reboots (Vm(reboot=True):
no -no-reboot, so a reboot or a reset keeps the guest's RAM). Each boot keel reads what the
one before left, erases it, and serves it: `keelctl dmesg --previous`, `logs --previous`.

Where the region is: at 128 MiB, not at the top of the 256 MiB guest. The firmware loads the
initramfs at the top of RAM below 4 GiB on every boot (`RAMDISK: [mem 0x0fab8000-0x0ffd7fff]`
here), so `memmap=1M!255M` would be overwritten before the kernel even starts."""

import json
import os
import re
import subprocess
import uuid
from pathlib import Path

from common import BOOT_TIMEOUT, EXIT_TIMEOUT, REPO, VmTest

KEELCTL = Path(os.environ.get("KEELCTL", REPO / "target/x86_64-unknown-linux-gnu/release/keelctl"))
CONFIG = REPO / "tests/qemu/image/pstore.toml"
# max_reason=4 (KMSG_DUMP_SHUTDOWN): a dump at every reboot(2) too, not only on a panic or oops.
APPEND = ("memmap=1M!128M ramoops.mem_address=0x8000000 ramoops.mem_size=0x100000 "
          "ramoops.record_size=0x10000 ramoops.max_reason=4 keel.debug=hvc0:rw")  # fmt: skip


def keelctl(vm, *args):
    if not KEELCTL.is_file():
        raise AssertionError(f"{KEELCTL} is missing: run `just keelctl`")
    out = subprocess.run([str(KEELCTL), "--unix", str(vm.console_path), "--timeout", "10", *args],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, f"keelctl {' '.join(args)}: {out.returncode}\n{out.stdout}{out.stderr}\nlog: {vm.log_path}"
    return out.stdout


class Pstore(VmTest):
    def boot_machine(self):
        initrd = self.initramfs("pstore", extra=["--config", str(CONFIG)])
        return self.boot(initrd, append=APPEND, virtio_console=True, reboot=True)

    def next_boot(self, vm, ended):
        """Wait for the next boot's verdict on the one before (`ended`: a regex), and its shell."""
        # To the end of the line: the console may bring it in pieces.
        m = vm.wait_for(r"keel: previous boot ended: (.*)\n", timeout=BOOT_TIMEOUT)
        self.assertRegex(m.group(1), f"^{ended}$", f"log: {vm.log_path}")
        vm.wait_for(r"keel: ready", timeout=BOOT_TIMEOUT)
        vm.wait_shell(timeout=BOOT_TIMEOUT)
        return m.group(1)

    def test_a_reboot_then_a_reset(self):
        vm = self.boot_machine()
        # A new machine's RAM holds no record: as after a power loss.
        self.next_boot(vm, r"power loss or reset \(no record, though a clean end leaves one\)")
        self.assertTrue(vm.seen(r"keel: module ramoops loaded"), f"log: {vm.log_path}")
        mem_address = vm.shell("cat /sys/module/ramoops/parameters/mem_address").split()[-1]
        self.assertEqual(mem_address, str(0x8000000), "the command line's parameters reached ramoops")
        token = f"pstore-test {uuid.uuid4().hex}"
        vm.shell(f"echo '{token}' > /dev/kmsg")
        keelctl(vm, "reboot")

        self.next_boot(vm, r"reboot \(Shutdown dump, keel's marker in it\)")
        rss_before = json.loads(keelctl(vm, "--json", "status"))["rss_kib"]
        dmesg = keelctl(vm, "dmesg", "--previous").splitlines()
        rss_after = json.loads(keelctl(vm, "--json", "status"))["rss_kib"]
        self.assertEqual(dmesg[0], "previous boot ended: reboot (Shutdown dump, keel's marker in it)")
        self.assertTrue(any(token in line for line in dmesg), f"the first boot's own line; {len(dmesg)} lines")
        self.assertRegex(dmesg[-1], r"^\[\s*\d+\.\d{6}\] reboot: Restarting system$")
        self.assertTrue(any(re.search(r"\] keel: clean reboot$", line) for line in dmesg), "keel's marker")
        self.assertNotIn(token, keelctl(vm, "dmesg"), "this boot's kernel log is another")
        logs = keelctl(vm, "logs", "--previous").splitlines()
        self.assertEqual(logs[0], dmesg[0])
        self.assertTrue(any(line.endswith("keel: reboot requested (debug client)") for line in logs), logs)
        self.assertFalse(any("pstore-test" in line for line in logs), "only keel's lines")
        self.assertRegex(keelctl(vm, "logs", "--previous", "-n", "2"), r"^previous boot ended: reboot .*\n.*keel: clean reboot\n.*keel: reboot\n$")
        self.report(f"dmesg --previous: {len(dmesg) - 1} lines, logs --previous: {len(logs) - 1} lines; "
                    f"keel's RSS {rss_before} KiB before, {rss_after} KiB after serving them")
        # Read and erased at boot: the zone is free, and the next boot finds only what this
        # one leaves (here nothing: a hard reset, no dump).
        self.assertEqual(vm.shell("ls /sys/fs/pstore").strip(), "")
        vm.qmp("system_reset")
        self.next_boot(vm, r"power loss or reset \(no record, though a clean end leaves one\)")
        self.assertEqual(keelctl(vm, "dmesg", "--previous").splitlines(), ["previous boot ended: power loss or reset (no record, though a clean end leaves one)"])
        keelctl(vm, "poweroff")
        self.assertEqual(vm.wait_exit(EXIT_TIMEOUT), 0, f"log: {vm.log_path}")

    def test_a_kernel_panic(self):
        vm = self.boot_machine()
        self.next_boot(vm, r"power loss or reset .*")
        token = f"pstore-test {uuid.uuid4().hex}"
        vm.shell(f"echo '{token}' > /dev/kmsg")
        # panic=-1 (tests/vm/qemu.py): the kernel restarts at once; the dumps of the panic and
        # of the emergency restart after it are in ramoops.
        vm.send("echo c > /proc/sysrq-trigger\n")
        vm.wait_for(r"Kernel panic - not syncing: sysrq triggered crash", timeout=30)
        self.next_boot(vm, r"kernel panic \(Panic dump\)")
        dmesg = keelctl(vm, "dmesg", "--previous").splitlines()
        self.assertEqual(dmesg[0], "previous boot ended: kernel panic (Panic dump)")
        self.assertTrue(any(token in line for line in dmesg), f"{len(dmesg)} lines")
        panics = [line for line in dmesg if "Kernel panic - not syncing: sysrq triggered crash" in line]
        self.assertEqual(len(panics), 1, "two dumps of one log, read once")
        self.assertTrue(any("keel: ready" in line for line in dmesg), "keel's lines are in the kernel's log")
        tail = keelctl(vm, "dmesg", "--previous", "-n", "3").splitlines()
        self.assertEqual(tail, [dmesg[0]] + dmesg[-3:])
        logs = keelctl(vm, "logs", "--previous").splitlines()
        marks = [line for line in logs if re.search(r"keel: clean (reboot|poweroff|halt)$", line)]
        self.assertEqual(marks, [], "no marker: keel did not end it")
        self.report(f"dmesg --previous after a panic: {len(dmesg) - 1} lines")
        keelctl(vm, "poweroff")
        self.assertEqual(vm.wait_exit(EXIT_TIMEOUT), 0, f"log: {vm.log_path}")


if __name__ == "__main__":
    import unittest

    unittest.main()
