"""Container mode as the machine's own init (`init=/init -- PROGRAM`): the kernel passes the
words after `--` to init. When the program ends, keel must not exit (the kernel would panic):
it powers the machine off."""

from common import EXIT_TIMEOUT, VmTest


class ContainerInit(VmTest):
    def test_program_as_init_then_poweroff(self):
        vm = self.boot(append="-- /bin/busybox echo program-ran-as-init")
        self.assertEqual(vm.wait_exit(EXIT_TIMEOUT), 0, f"log: {vm.log_path}")
        self.assertTrue(vm.seen(r"^program-ran-as-init"), f"log: {vm.log_path}")
        self.assertTrue(vm.seen(r"keel: the program ended \(0\); powering off"), f"log: {vm.log_path}")
        self.assertEqual(vm.shutdown_reason(), "guest-shutdown", f"log: {vm.log_path}")
        self.assertFalse(vm.seen(r"Attempted to kill init"), f"log: {vm.log_path}")
