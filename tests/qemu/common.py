"""Shared by the QEMU tests: the initramfs variants and a TestCase that boots VMs.

Run with `just test-qemu` (which builds keel and the test-hooks keel for x86_64 and aarch64
and fetches both kernels),
or directly: `python3 -B -m unittest discover -s tests/qemu -t tests/qemu -v`.
Every boot writes its serial log to target/qemu-logs/<test>.log; a failing test prints it.
"""

import os
import subprocess
import sys
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests/vm"))

import qemu  # noqa: E402  (tests/vm/qemu.py)

KEEL = Path(os.environ.get("KEEL_BIN", REPO / "target/x86_64-unknown-linux-musl/release/keel"))
KEEL_TEST = Path(os.environ.get("KEEL_TEST_BIN", REPO / "target/test-hooks/x86_64-unknown-linux-musl/release/keel"))
# arch -> (keel, the test-hooks keel, what builds them)
KEELS = {
    "x86_64": (KEEL, KEEL_TEST, "just build", "just build-test"),
    "aarch64": (
        Path(os.environ.get("KEEL_ARM_BIN", REPO / "target/aarch64-unknown-linux-musl/release/keel")),
        Path(os.environ.get("KEEL_ARM_TEST_BIN", REPO / "target/test-hooks/aarch64-unknown-linux-musl/release/keel")),
        "just build-arm", "just build-test",
    ),  # fmt: skip
}
OUT = REPO / "target" / "qemu-tests"

# Generous for TCG on a loaded 2-core machine; a normal boot takes 2-4 s.
BOOT_TIMEOUT = 60
# keel's shutdown deadline is 10 s by default, plus 1 s for SIGKILLed processes.
EXIT_TIMEOUT = 40

_built = {}


def initramfs(variant="default", init=None, omit=(), files=(), extra=(), arch="x86_64"):
    """Build (once per test run) an initramfs with busybox and the default modules; `init`
    is a keel binary or "test" for the arch's test-hooks build."""
    key = (arch, variant)
    if key in _built:
        return _built[key]
    keel, keel_test, how, how_test = KEELS[arch]
    init = keel_test if init == "test" else Path(init or keel)
    how = how_test if init == keel_test else how
    if not init.is_file():
        raise AssertionError(f"{init} is missing: run `{how}` (or `just test-qemu`)")
    out = OUT / (f"{variant}.cpio" if arch == "x86_64" else f"{arch}-{variant}.cpio")
    cmd = [sys.executable, str(REPO / "tests/vm/mkinitramfs"), "--arch", arch, "--init", str(init), "--out", str(out), "--busybox"]
    for m in omit:
        cmd += ["--omit-module", m]
    for f in files:
        cmd += ["--file", f]
    cmd += list(extra)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"mkinitramfs failed ({r.returncode}): {r.stderr}")
    _built[key] = out
    return out


class VmTest(unittest.TestCase):
    """Each test boots its own VM(s) through `self.boot`; they are always killed at the end,
    and a failing test prints where their serial logs are. `arch` is the guest's (a
    subclass sets "aarch64"); `self.initramfs` builds for it."""

    arch = "x86_64"

    def setUp(self):
        self.vms = []

    def initramfs(self, variant="default", **kw):
        return initramfs(variant, arch=self.arch, **kw)

    def boot(self, initrd=None, **kw):
        name = kw.pop("name", self.id().split(".", 1)[-1])
        vm = qemu.Vm(initrd or self.initramfs(), name=name, arch=self.arch, **kw)
        self.vms.append(vm)
        self.addCleanup(vm.close)
        return vm.start()

    def boot_ready(self, initrd=None, **kw):
        """Boot, wait for `keel: ready` and for the console shell to answer."""
        vm = self.boot(initrd, **kw)
        vm.wait_for(r"keel: ready", timeout=BOOT_TIMEOUT)
        vm.wait_shell(timeout=BOOT_TIMEOUT)
        return vm

    def run(self, result=None):
        result = result if result is not None else self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        out = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            for vm in getattr(self, "vms", []):
                print(f"\n    serial log of {vm.name}: {vm.log_path}", file=sys.stderr)
        return out

    def report(self, text):
        print(f"\n    {self.id().rsplit('.', 1)[-1]}: {text}", file=sys.stderr, end="")
