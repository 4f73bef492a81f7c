//! Power: where signals go (`signals`); the power button, as ACPI events (`acpi`, over
//! generic netlink: `netlink` views, `nlctrl` family lookup) and as evdev power keys
//! (`evdev`); and what happens at shutdown (`shutdown`; the flush child in `flush`,
//! watching /proc/meminfo in `meminfo`, unmounting in `unmount`; the hardware watchdog that
//! bounds it in `watchdog`). This
//! file: the three ways a machine stops (keel_proto's `PowerCmd`, the same on the wire) and
//! what reboot(2) calls each.

pub mod acpi;
pub mod evdev;
#[cfg(all(not(test), feature = "rt"))]
pub mod flush;
pub mod meminfo;
pub mod netlink;
pub mod nlctrl;
pub mod shutdown;
pub mod signals;
pub mod unmount;
pub mod watchdog;

pub use keel_proto::PowerCmd;
use rustix::system::RebootCommand;

pub const fn reboot_command(cmd: PowerCmd) -> RebootCommand {
    match cmd {
        PowerCmd::Halt => RebootCommand::Halt,
        PowerCmd::PowerOff => RebootCommand::PowerOff,
        PowerCmd::Reboot => RebootCommand::Restart,
    }
}

/// What reboot(2) is finally asked for: with `keel.poweroff=reboot` a poweroff restarts
/// (a VMM that ends the VM only on a guest reboot); halt stays halt.
pub const fn final_command(cmd: PowerCmd, poweroff_reboots: bool) -> PowerCmd {
    match cmd {
        PowerCmd::PowerOff if poweroff_reboots => PowerCmd::Reboot,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PowerCmd::*;

    #[test]
    fn only_halt_to_poweroff_upgrades() {
        for cur in [Halt, PowerOff, Reboot] {
            for new in [Halt, PowerOff, Reboot] {
                let expect = if (cur, new) == (Halt, PowerOff) { Some(PowerOff) } else { None };
                assert_eq!(cur.upgraded_by(new), expect, "{cur:?} + {new:?}");
            }
        }
    }

    #[test]
    fn poweroff_as_reboot_changes_poweroff_only() {
        for cmd in [Halt, PowerOff, Reboot] {
            assert_eq!(final_command(cmd, false), cmd);
        }
        assert_eq!([Halt, PowerOff, Reboot].map(|c| final_command(c, true)), [Halt, Reboot, Reboot]);
    }

    #[test]
    fn reboot_commands() {
        assert_eq!(reboot_command(Halt), RebootCommand::Halt);
        assert_eq!(reboot_command(PowerOff), RebootCommand::PowerOff);
        assert_eq!(reboot_command(Reboot), RebootCommand::Restart);
    }
}
