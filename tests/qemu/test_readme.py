"""README.md's "Build your own image", run as it stands: its shell blocks, marked by the
`<!-- readme-test: ROLE -->` comment before each, are taken from the README itself (no copy
here). In an empty directory, with only keel and keelctl (the release builds, side by side)
and the system's tools on PATH: the `build` blocks in one shell; then the `boot` block (QEMU)
in the background, in the directory they ended in; once the console says the service is
ready, the `keelctl` block; its `services` table must show hello ready, and its poweroff
must end QEMU. `on paper` blocks (Firecracker, cloud-hypervisor: no KVM here) are not run,
but every block of the section has a role, and the Firecracker config is valid JSON with
the command line the README states.

KERNEL and MODULES (which the README reads with the running kernel's as the default) are
the test kernel's: fetch-kernel's PVH vmlinux and its module tree.

WAITS ON PID 1 reading its compiled config (/etc/keel/keel.db; the lead's change): until
then keel runs its built-in table and hello never starts.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path

from common import KEEL, REPO, qemu

KEELCTL = Path(os.environ.get("KEELCTL", REPO / "target/x86_64-unknown-linux-gnu/release/keelctl"))
SECTION = "## Build your own image"
MARKER = re.compile(r"<!-- readme-test: ([^>]*?) -->\n```(\w+)\n(.*?)\n```", re.S)
BOOT_TIMEOUT = 90


def section():
    text = (REPO / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end >= 0 else len(text)]


def blocks():
    """(role, language, body) of each marked block, in order."""
    return [(m.group(1), m.group(2), m.group(3)) for m in MARKER.finditer(section())]


class Readme(unittest.TestCase):
    def test_every_block_has_a_role(self):
        fences = len(re.findall(r"^```\w+$", section(), re.M))
        marked = blocks()
        # The one unmarked block is the sample `services` output (```text).
        self.assertEqual(fences, len(marked) + 1, "a code block without a readme-test role")
        roles = [r for r, _, _ in marked]
        for role in roles:
            self.assertTrue(role in ("build", "boot", "keelctl") or role.startswith("on paper"), role)
        self.assertEqual([r for r in roles if not r.startswith("on paper")], ["build", "boot", "keelctl"])
        fc = [b for r, lang, b in marked if r.startswith("on paper") and lang == "json"]
        self.assertEqual(len(fc), 1)
        config = json.loads(fc[0])
        self.assertTrue(config["boot-source"]["boot_args"].startswith("console=ttyS0 reboot=k panic=1 pci=off"))
        self.assertEqual(config["vsock"]["uds_path"], "v.sock")
        self.assertIn("keel.debug=vsock:1024:rw", config["boot-source"]["boot_args"])

    def test_the_steps_build_and_boot(self):
        for what, path, how in ((KEEL, KEEL, "just build"), (KEELCTL, KEELCTL, "just keelctl")):
            if not path.is_file():
                raise AssertionError(f"{path} is missing: run `{how}`")
        for tool in ("gcc", "qemu-system-x86_64"):
            if not shutil.which(tool):
                raise AssertionError(f"{tool} is missing (apt-get install gcc libc6-dev qemu-system-x86)")
        steps = {role: body for role, lang, body in blocks() if lang == "sh" and not role.startswith("on paper")}
        tmp = Path(tempfile.mkdtemp(prefix="keel-readme-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        # The release binaries side by side, first on PATH; the system's tools after them.
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        shutil.copy(KEEL, bin_dir / "keel")
        shutil.copy(KEELCTL, bin_dir / "keelctl")
        work = tmp / "work"
        work.mkdir()
        release = (qemu.CACHE / "kernel" / "release").read_text().strip()
        env = dict(os.environ, PATH=f"{bin_dir}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                   KERNEL=str(qemu.KERNEL), MODULES=str(qemu.CACHE / "kernel/root/lib/modules" / release))  # fmt: skip
        # The build blocks in one shell, as typed into one terminal; where they ended.
        where = tmp / "cwd"
        script = f"set -euo pipefail\n{steps['build']}\npwd > {where}\n"
        r = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, f"the build steps failed:\n{r.stdout}\n{r.stderr}")
        self.assertRegex(r.stderr, r"keelctl: initrd\.img \(\d+ bytes, gzip\): keel for x86_64, config with 3 services")
        here = Path(where.read_text().strip())
        # The boot block, its console a pipe read into a log.
        qemu.LOG_DIR.mkdir(parents=True, exist_ok=True)
        log_path = qemu.LOG_DIR / "readme.log"
        vm = subprocess.Popen(["bash", "-c", steps["boot"]], cwd=here, env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self.addCleanup(self.stop, vm)
        console = Console(vm.stdout, log_path)
        console.wait(r"hello\| hello: ready, and keel knows it", BOOT_TIMEOUT, vm)
        # The keelctl block, from another terminal in the same directory.
        r = subprocess.run(["bash", "-c", f"set -euo pipefail\n{steps['keelctl']}"], cwd=here, env=env,
                           capture_output=True, text=True, timeout=60)  # fmt: skip
        self.assertEqual(r.returncode, 0, f"{r.stdout}{r.stderr}; console: {log_path}")
        states = dict(re.findall(r"^(\S+)\s+(\S+)\s", r.stdout, re.M))
        self.assertEqual(states, {"NAME": "STATE", "prepare": "exited", "hello": "ready", "shell": "ready"}, r.stdout)
        self.assertEqual(vm.wait(timeout=60), 0, f"QEMU after poweroff; console: {log_path}")
        console.done()
        self.assertIn("keel: svc hello: starting -> ready", console.text, f"console: {log_path}")

    @staticmethod
    def stop(proc):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        for f in (proc.stdin, proc.stdout):
            f.close()


class Console:
    """QEMU's serial output, read by a thread into `text` and a log file."""

    def __init__(self, stream, log_path):
        self.text, self.cond = "", threading.Condition()
        self.log = open(log_path, "w")
        self.thread = threading.Thread(target=self.pump, args=(stream,), daemon=True)
        self.thread.start()

    def pump(self, stream):
        for chunk in iter(lambda: stream.read1(4096), b""):
            with self.cond:
                s = chunk.decode("utf-8", "replace").replace("\r", "")
                self.text += s
                self.log.write(s)
                self.log.flush()
                self.cond.notify_all()

    def wait(self, pattern, timeout, proc):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not re.search(pattern, self.text, re.M):
                if proc.poll() is not None:
                    raise AssertionError(f"QEMU exited ({proc.returncode}) before /{pattern}/; console: {self.log.name}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no /{pattern}/ within {timeout} s; console: {self.log.name}")
                self.cond.wait(min(left, 0.5))

    def done(self):
        self.thread.join(timeout=5)
        self.log.close()


if __name__ == "__main__":
    unittest.main()
