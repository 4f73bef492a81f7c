"""Modules for the hardware that is there (docs/devices.md): coldplug at boot (every
device's modalias under /sys/devices against the image's modules.alias) and hotplug in the
loop (a uevent `add` with a MODALIAS). The image packs the drivers of two classes, virtio
and nvme (`keelctl image --modules-for`), which keel's own list of modules does not name:
virtio_net, virtio_input, nvme are loaded only if a device asks for them. Hot-plugged
devices go on PCIe root ports of the q35 machine (QMP device_add)."""

import re
import shutil
import tempfile
import time
import unittest
from pathlib import Path

from common import BOOT_TIMEOUT, EXIT_TIMEOUT, VmTest

CLASSES = ["--modules-for", "virtio", "--modules-for", "nvme"]
# Two empty hot-plug slots, and a drive for each of them to come with.
SLOTS = ["-device", "pcie-root-port,id=rp1,chassis=1", "-device", "pcie-root-port,id=rp2,chassis=2"]


class Coldplug(VmTest):
    def setUp(self):
        super().setUp()
        self.tmp = Path(tempfile.mkdtemp(prefix="keel-coldplug-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def image(self):
        return self.initramfs("coldplug", extra=CLASSES)

    def modules(self, vm):
        return {line.split()[0] for line in vm.shell("cat /proc/modules").splitlines() if line.strip()}

    def drives(self, *names):
        """Blank 8 MiB drives, there from the start; their devices are plugged in later."""
        args = []
        for name in names:
            path = self.tmp / f"{name}.img"
            with open(path, "wb") as f:
                f.truncate(8 << 20)
            args += ["-drive", f"file={path},if=none,id={name},format=raw"]
        return args

    def test_a_network_card_no_list_names_gets_its_driver(self):
        vm = self.boot_ready(self.image(), extra_args=["-device", "virtio-net-pci"])
        interfaces = vm.shell("ls /sys/class/net").split()
        self.assertIn("eth0", interfaces, f"log: {vm.log_path}")
        self.assertIn("virtio_net", self.modules(vm), f"log: {vm.log_path}")
        line = re.search(r"keel: coldplug: (\d+) devices in (\d+) directories, 0 left out; modules: (\d+) loaded", vm.text)
        self.assertTrue(line, f"no coldplug summary; log: {vm.log_path}")
        self.assertTrue(vm.seen(r"keel: module virtio_net loaded"), f"log: {vm.log_path}")
        # Packed but not asked for by any device: not loaded.
        self.assertNotIn("nvme", self.modules(vm), f"log: {vm.log_path}")
        took = re.search(r"keel: coldplug \((\d+) us\)", vm.text)
        self.report(f"{line.group(1)} devices, {line.group(3)} modules loaded, eth0 up; the phase took {int(took.group(1)) / 1000:.0f} ms")

    def test_off_on_the_command_line_loads_nothing_for_devices(self):
        vm = self.boot_ready(self.image(), append="keel.coldplug=off", extra_args=["-device", "virtio-net-pci"] + SLOTS + self.drives("late"))
        self.assertTrue(vm.seen(r"keel: coldplug: skipped, keel.coldplug=off"), f"log: {vm.log_path}")
        self.assertEqual(vm.shell("ls /sys/class/net").split(), ["lo"], f"log: {vm.log_path}")
        # Nor later: a hot-plugged NVMe disk gets no driver.
        vm.qmp("device_add", driver="nvme", bus="rp1", drive="late", serial="late", id="nvme1")
        vm.wait_for(r"pci \S+: \[1b36:0010\]", timeout=BOOT_TIMEOUT)
        vm.shell("sleep 2")
        self.assertFalse({"virtio_net", "nvme"} & self.modules(vm), f"log: {vm.log_path}")
        self.assertFalse(vm.seen(r"keel: disk /dev/nvme"), f"log: {vm.log_path}")

    def test_hot_added_disks_get_their_driver_and_are_seen(self):
        vm = self.boot_ready(self.image(), extra_args=SLOTS + self.drives("fast", "blk"))
        self.assertNotIn("nvme", self.modules(vm))
        # NVMe: no module for it yet; the uevent's MODALIAS brings it.
        vm.qmp("device_add", driver="nvme", bus="rp1", drive="fast", serial="fast", id="nvme1")
        vm.wait_for(r"keel: module nvme loaded", timeout=BOOT_TIMEOUT)
        vm.wait_for(r"keel: disk /dev/nvme0n1 added", timeout=BOOT_TIMEOUT)
        took = time.monotonic() - vm.marks["device_add"]
        self.assertEqual(vm.shell("ls /dev/nvme0n1").strip(), "/dev/nvme0n1", f"log: {vm.log_path}")
        # virtio-blk: its driver is keel's own (loaded at boot); the disk is seen.
        vm.qmp("device_add", driver="virtio-blk-pci", bus="rp2", drive="blk", id="vblk1")
        vm.wait_for(r"keel: disk /dev/vda added", timeout=BOOT_TIMEOUT)
        self.assertEqual(vm.shell("ls /dev/vda").strip(), "/dev/vda", f"log: {vm.log_path}")
        self.report(f"nvme: module loaded and /dev/nvme0n1 seen {took:.1f} s after device_add")

    def test_a_hot_added_keyboard_is_a_power_key(self):
        # No AT keyboard (i8042.nokbd): the key press can only come through the new device.
        vm = self.boot_ready(self.image(), append="i8042.nokbd", extra_args=SLOTS)
        self.assertFalse(vm.seen(r"keel: power key: .*Virtio Keyboard"))
        vm.qmp("device_add", driver="virtio-keyboard-pci", bus="rp1", id="kbd1")
        vm.wait_for(r"keel: module virtio_input loaded", timeout=BOOT_TIMEOUT)
        n = vm.wait_for(r"keel: power key: /dev/input/event(\d+) \(QEMU Virtio Keyboard\)", timeout=BOOT_TIMEOUT).group(1)
        # Unplugged, its fd is closed: evdev reports POLLHUP for good, which would spin the
        # loop. (pciehp waits 5 s after the attention button before the slot goes.)
        vm.qmp("device_del", id="kbd1")
        deadline = time.monotonic() + 30
        while vm.shell(f"test -e /dev/input/event{n} && echo there").strip() == "there":
            self.assertLess(time.monotonic(), deadline, f"event{n} still there; log: {vm.log_path}")
            time.sleep(1)
        ticks = lambda: sum(int(t) for t in vm.shell("cut -d' ' -f14,15 /proc/1/stat").split())
        before = ticks()
        vm.shell("sleep 2")
        spent = ticks() - before
        self.assertLess(spent, 20, f"PID 1 used {spent} ticks in 2 s with its power key gone; log: {vm.log_path}")
        # Plugged in again: a power key again.
        vm.qmp("device_add", driver="virtio-keyboard-pci", bus="rp1", id="kbd2")
        vm.wait_for(r"keel: power key: /dev/input/event\d+ \(QEMU Virtio Keyboard\)", timeout=BOOT_TIMEOUT)
        for down in (True, False):
            vm.qmp("input-send-event", events=[{"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": "power"}}}])
        vm.wait_for(r"keel: poweroff requested \(power key\)", timeout=BOOT_TIMEOUT)
        self.assertEqual(vm.wait_exit(EXIT_TIMEOUT), 0, f"log: {vm.log_path}")
        self.assertEqual(vm.shutdown_reason(), "guest-shutdown", f"log: {vm.log_path}")
        self.report(f"virtio keyboard hot-added, removed ({spent} ticks of PID 1 in 2 s), added again: its power key powered off in {vm.since('input-send-event'):.1f} s")


if __name__ == "__main__":
    unittest.main()
