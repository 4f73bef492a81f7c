"""Services under a real kernel: the default service table gives a supervised shell on the
console with job control; a command typed there runs; the power button stops the service
(SIGHUP, its stop signal) before the rest of the shutdown."""

from common import EXIT_TIMEOUT, VmTest


class Services(VmTest):
    def test_console_shell_runs_commands_and_stops_at_powerdown(self):
        vm = self.boot_ready()
        self.assertTrue(vm.seen(r"keel: svc shell: waiting -> ready"), f"log: {vm.log_path}")
        out = vm.shell("echo typed-$((6 * 7)); tty; echo pgid=$(cut -d' ' -f5 /proc/$$/stat) sid=$(cut -d' ' -f6 /proc/$$/stat)")
        self.assertIn("typed-42", out)
        # A real session on the console: the shell leads it (job control works).
        self.assertIn("/dev/console", out)
        fields = dict(w.split("=") for w in out.split() if w.startswith(("pgid=", "sid=")))
        self.assertEqual(fields.get("pgid"), fields.get("sid"), f"output: {out!r}")
        vm.qmp("system_powerdown")
        self.assertEqual(vm.wait_exit(EXIT_TIMEOUT), 0, f"log: {vm.log_path}")
        stopping = vm.seen(r"keel: svc shell: ready -> stopping")
        self.assertTrue(stopping, f"the shell service was not stopped; log: {vm.log_path}")
        self.assertTrue(vm.seen(r"keel: svc shell: stopping -> stopped"), f"log: {vm.log_path}")
        self.assertFalse(vm.seen(r"still running after its grace"), f"SIGHUP ends the shell; log: {vm.log_path}")
        self.assertTrue(vm.seen(r"keel: poweroff"), f"log: {vm.log_path}")
