"""keel's debug protocol over vsock, end to end. This machine has no /dev/vhost-vsock, so
the guest's vsock device is vhost-user-vsock-pci served by rust-vmm's vhost-device-vsock,
whose host side is a "hybrid vsock" unix socket: keelctl --vsock-unix PATH:PORT.

Without the backend the test fails under CI=true (.ci/run installs it) and is skipped,
loudly, elsewhere."""

import os
import re
import shutil
import socket
import subprocess
import sys

import qemu
from common import EXIT_TIMEOUT, VmTest
from test_debug import KEELCTL


def keelctl(vm, port, *args, timeout=30):
    if not KEELCTL.is_file():
        raise AssertionError(f"{KEELCTL} is missing: run `just keelctl`")
    argv = [str(KEELCTL), "--vsock-unix", f"{vm.vsock_path}:{port}", "--timeout", "10", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


class Vsock(VmTest):
    def setUp(self):
        super().setUp()
        if shutil.which(qemu.VSOCK_BACKEND):
            return
        why = f"{qemu.VSOCK_BACKEND} is missing: {qemu.VSOCK_BACKEND_INSTALL}"
        if os.environ.get("CI") == "true":
            self.fail(f"{why} (.ci/run installs it)")
        print(f"\n    WARNING: vsock test SKIPPED: {why}", file=sys.stderr)
        self.skipTest(why)

    def test_keelctl_over_vsock(self):
        vm = self.boot_ready(vsock_backend=True, append="keel.debug=vsock:1024:rw,vsock:1025:ro")
        log = f"log: {vm.log_path}"
        # The guest side: the transport module made /dev/vsock, keel's listeners came up.
        self.assertRegex(vm.shell("ls /dev/vsock"), r"^/dev/vsock$", log)
        self.assertTrue(vm.seen(r"keel: debug channel vsock:1024:rw \(read-write\)"), log)
        self.assertTrue(vm.seen(r"keel: debug channel vsock:1025:ro \(read-only\)"), log)

        # The backend's handshake as keelctl expects it (the keelctl tests fake it).
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(vm.vsock_path))
            s.sendall(b"CONNECT 1024\n")
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = s.recv(1)
                self.assertTrue(chunk, f"closed after {answer!r}; {log}")
                answer += chunk
            self.assertRegex(answer, rb"^OK \d+\n$", log)

        out = keelctl(vm, 1024, "status")
        self.assertEqual(out.returncode, 0, f"{out.stdout}{out.stderr}; {log}")
        self.assertRegex(out.stdout, r"(?m)^version: +\d+\.\d+\.\d+$")
        self.assertRegex(out.stdout, r"(?m)^uptime: +\d+\.\d{3} s$")
        out = keelctl(vm, 1024, "services")
        self.assertEqual(out.returncode, 0, f"{out.stderr}; {log}")
        self.assertRegex(out.stdout, r"(?m)^shell\s+ready\s+\d+\s+0$")

        # The read-only port answers questions and refuses actions.
        out = keelctl(vm, 1025, "status")
        self.assertEqual(out.returncode, 0, f"{out.stderr}; {log}")
        self.assertIn("uptime:", out.stdout)
        pid = re.search(r"(?m)^shell\s+ready\s+(\d+)", keelctl(vm, 1024, "services").stdout).group(1)
        out = keelctl(vm, 1025, "restart", "shell")
        self.assertEqual((out.returncode, out.stdout), (1, ""), f"{out.stderr}; {log}")
        self.assertIn("keelctl: denied:", out.stderr)
        self.assertFalse(vm.seen(r"svc shell: (restart|stop)"), f"restarted from a read-only port; {log}")
        out = keelctl(vm, 1024, "services")
        self.assertRegex(out.stdout, rf"(?m)^shell\s+ready\s+{pid}\s+0$", "the shell was left alone")

        # A port nobody listens on: the guest resets, the backend closes, exit 3.
        out = keelctl(vm, 1026, "status")
        self.assertEqual(out.returncode, 3, f"{out.stdout}{out.stderr}; {log}")
        self.assertIn("nothing listens on guest port 1026", out.stderr)

        # And a mutating request on the read-write port works: power off over vsock.
        out = keelctl(vm, 1024, "poweroff")
        self.assertEqual(out.returncode, 0, f"{out.stderr}; {log}")
        self.assertEqual(vm.wait_exit(EXIT_TIMEOUT), 0, log)
        self.assertTrue(vm.seen(r"keel: poweroff requested \(debug client\)"), log)
