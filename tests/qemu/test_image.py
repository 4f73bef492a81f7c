"""An image built by `keelctl image` (the command a user runs, not the test wrapper) boots:
three services from a compiled config, all Debian programs of the host with their glibc
(tests/qemu/image/system.toml), reach their states; the same image with its keel.db
corrupted falls back to keel's built-in table and says why; keel.config= picks another db
in the image. The image is zstd-compressed (ruzstd's frames, unpacked by the kernel).

WAITS ON PID 1 reading its compiled config (/etc/keel/keel.db, keel.config=; the lead's
change): the `keel: config ...` console lines and the services of the db. Until it is
merged these tests fail at the first such line; the image's contents are checked without
booting in keelctl's own tests (keelctl/src/image/tests.rs, keelctl/tests/image.rs).
"""

import os
import re
import subprocess
import tempfile
import unittest
from pathlib import Path

from common import EXIT_TIMEOUT, KEEL, OUT, REPO, VmTest, qemu

KEELCTL = Path(os.environ.get("KEELCTL", REPO / "target/x86_64-unknown-linux-gnu/release/keelctl"))
HERE = Path(__file__).resolve().parent / "image"
BOOT_TIMEOUT = 60


def keelctl(*args, check=True):
    if not KEELCTL.is_file():
        raise AssertionError(f"{KEELCTL} is missing: run `just keelctl`")
    r = subprocess.run([str(KEELCTL), *map(str, args)], capture_output=True, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError(f"keelctl {' '.join(map(str, args))}: exit {r.returncode}: {r.stderr.decode()}")
    return r


_images = {}


def image(compress):
    """system.toml's image (and other.db at /etc/keel/other.db), built once per run."""
    if compress in _images:
        return _images[compress]
    if not KEEL.is_file():
        raise AssertionError(f"{KEEL} is missing: run `just build`")
    release = (qemu.CACHE / "kernel" / "release").read_text().strip()
    OUT.mkdir(parents=True, exist_ok=True)
    other = OUT / "image-other.db"
    keelctl("compile", HERE / "other.toml", "-o", other)
    out = OUT / f"image-{compress}.img"
    keelctl("image", "--keel", KEEL, "--config", HERE / "system.toml", "--busybox", "/bin/busybox",
            "--add", f"{other}:/etc/keel/other.db",
            "--modules-from", qemu.CACHE / "kernel/root/lib/modules" / release,
            "--compress", compress, "-o", out)  # fmt: skip
    _images[compress] = out
    return out


class Image(VmTest):
    def keelctl_on(self, vm, *args):
        r = keelctl("--unix", vm.console_path, "--timeout", "10", *args, check=False)
        self.assertEqual(r.returncode, 0, f"keelctl {' '.join(args)}: {r.stderr.decode()}; log: {vm.log_path}")
        return r.stdout.decode()

    def test_services_from_the_compiled_config(self):
        vm = self.boot(image("zstd"), virtio_console=True)
        vm.wait_for(r"keel: config /etc/keel/keel\.db: 3 services", timeout=BOOT_TIMEOUT, since=0)
        vm.wait_for(r"setup\| MARK=image-setup-ran", timeout=BOOT_TIMEOUT, since=0)
        for name in ("waiter", "tailer"):
            vm.wait_for(rf"keel: svc {name}: \w+ -> ready", timeout=BOOT_TIMEOUT, since=0)
        vm.wait_for(r"keel: svc setup: \w+ -> exited", timeout=BOOT_TIMEOUT, since=0)
        # keelctl over the config's own debug channel ([debug] channels = ["hvc0:rw"]).
        states = dict(re.findall(r"^(\S+)\s+(\S+)\s", self.keelctl_on(vm, "services"), re.M))
        self.assertEqual(states, {"NAME": "STATE", "setup": "exited", "waiter": "ready", "tailer": "ready"})
        self.assertIn("/etc/keel/keel.db", self.keelctl_on(vm, "status"), "status names the config that runs")
        self.assertFalse(vm.seen(r"svc shell"), "the built-in table's shell does not run")
        self.keelctl_on(vm, "poweroff")
        self.assertEqual(vm.wait_exit(EXIT_TIMEOUT), 0, f"log: {vm.log_path}")

    def test_a_corrupt_db_falls_back_to_the_built_in_table(self):
        # The same image, uncompressed, with one byte of keel.db's body flipped: its CRC fails.
        data = bytearray(image("none").read_bytes())
        db = keelctl("compile", HERE / "system.toml", "-o", "-").stdout
        self.assertEqual(data.count(db), 1, "keel.db's bytes once in the archive")
        at = data.find(db) + len(db) // 2
        data[at] ^= 0xFF
        with tempfile.NamedTemporaryFile(dir=OUT, prefix="image-corrupt-", suffix=".img", delete=False) as f:
            f.write(data)
        self.addCleanup(os.unlink, f.name)
        vm = self.boot(Path(f.name))
        vm.wait_for(r"keel: config /etc/keel/keel\.db: bad checksum \(corrupt\); the built-in table runs instead",
                    timeout=BOOT_TIMEOUT, since=0)  # fmt: skip
        vm.wait_for(r"keel: ready", timeout=BOOT_TIMEOUT, since=0)
        vm.wait_shell(timeout=BOOT_TIMEOUT)  # the built-in table: busybox's shell on the console
        self.assertFalse(vm.seen(r"svc (setup|waiter|tailer)"), f"the corrupt db's services ran; log: {vm.log_path}")

    def test_keel_config_names_another_db(self):
        vm = self.boot(image("zstd"), append="keel.config=/etc/keel/other.db")
        vm.wait_for(r"keel: config /etc/keel/other\.db: 1 services?\b", timeout=BOOT_TIMEOUT, since=0)
        vm.wait_for(r"other\| MARK=other-config-ran", timeout=BOOT_TIMEOUT, since=0)
        vm.wait_for(r"keel: svc other: \w+ -> exited", timeout=BOOT_TIMEOUT, since=0)
        self.assertFalse(vm.seen(r"svc (setup|waiter|tailer|shell)"), f"log: {vm.log_path}")


if __name__ == "__main__":
    unittest.main()
