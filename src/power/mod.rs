//! Power: where signals go (`signals`), the power button (`acpi`: ACPI events and evdev
//! power keys), and what happens at shutdown (`shutdown`, unmounting in `unmount`). This
//! file: the three ways a machine stops, and what reboot(2) calls each.

pub mod acpi;
pub mod shutdown;
pub mod signals;
pub mod unmount;

use rustix::system::RebootCommand;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PowerCmd {
    Halt,
    PowerOff,
    Reboot,
}

impl PowerCmd {
    pub const fn name(self) -> &'static str {
        match self {
            PowerCmd::Halt => "halt",
            PowerCmd::PowerOff => "poweroff",
            PowerCmd::Reboot => "reboot",
        }
    }

    pub const fn reboot_command(self) -> RebootCommand {
        match self {
            PowerCmd::Halt => RebootCommand::Halt,
            PowerCmd::PowerOff => RebootCommand::PowerOff,
            PowerCmd::Reboot => RebootCommand::Restart,
        }
    }

    /// A request arriving while `self` already runs: only halt → poweroff is an upgrade
    /// (a machine that is going down anyway may as well turn off). Anything else is kept
    /// as it is, so a second signal never restarts or redirects the sequence.
    pub const fn upgraded_by(self, new: PowerCmd) -> Option<PowerCmd> {
        match (self, new) {
            (PowerCmd::Halt, PowerCmd::PowerOff) => Some(PowerCmd::PowerOff),
            _ => None,
        }
    }
}

impl ufmt::uDisplay for PowerCmd {
    fn fmt<W: ufmt::uWrite + ?Sized>(&self, f: &mut ufmt::Formatter<'_, W>) -> Result<(), W::Error> {
        f.write_str(self.name())
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
    fn reboot_commands() {
        assert_eq!(Halt.reboot_command(), RebootCommand::Halt);
        assert_eq!(PowerOff.reboot_command(), RebootCommand::PowerOff);
        assert_eq!(Reboot.reboot_command(), RebootCommand::Restart);
    }
}
