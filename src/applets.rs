//! `poweroff`, `reboot`, `halt`: ask PID 1 by signal (the busybox convention, so they work
//! under keel and under busybox init alike), or with `-f` call reboot(2) directly.
//! Flags as busybox: `-f` force, `-n` no sync, `-d SECONDS` delay.

use crate::log::Line;
use crate::log::say::Part::{self, E, T};
use crate::power::PowerCmd;
use linux_raw_sys::general as k;

/// The signal that asks PID 1 for `cmd` (busybox's applets send the same).
pub const fn signal_for(cmd: PowerCmd) -> u32 {
    match cmd {
        PowerCmd::Halt => k::SIGUSR1,
        PowerCmd::PowerOff => k::SIGUSR2,
        PowerCmd::Reboot => k::SIGTERM,
    }
}

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub force: bool,
    pub no_sync: bool,
    pub delay_secs: u32,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FlagError<'a> {
    Unknown(&'a [u8]),
    MissingDelay,
    BadDelay(&'a [u8]),
    Help,
}

/// Parse busybox-style flags; letters may be grouped (`-fn`, `-d5`, `-nd 5`).
pub fn parse_flags<'a>(args: impl IntoIterator<Item = &'a [u8]>) -> Result<Flags, FlagError<'a>> {
    let mut flags = Flags::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == b"--help" || arg == b"-h" {
            return Err(FlagError::Help);
        }
        let Some(letters) = arg.strip_prefix(b"-").filter(|l| !l.is_empty()) else {
            return Err(FlagError::Unknown(arg));
        };
        for (i, &letter) in letters.iter().enumerate() {
            match letter {
                b'f' => flags.force = true,
                b'n' => flags.no_sync = true,
                b'd' => {
                    let value = match letters.get(i + 1..).unwrap_or_default() {
                        [] => args.next().ok_or(FlagError::MissingDelay)?,
                        attached => attached,
                    };
                    flags.delay_secs = crate::config::cmdline::parse_u32(value).ok_or(FlagError::BadDelay(value))?;
                    break;
                }
                _ => return Err(FlagError::Unknown(arg)),
            }
        }
    }
    Ok(flags)
}

/// Run the applet `cmd` with the arguments after argv[0]; exits.
pub fn run<'a>(cmd: PowerCmd, args: impl IntoIterator<Item = &'a [u8]>) -> ! {
    let flags = match parse_flags(args) {
        Ok(flags) => flags,
        Err(e) => {
            let code = if e == FlagError::Help { 0 } else { 2 };
            if e != FlagError::Help {
                let (template, arg): (&[u8], &[u8]) = match e {
                    FlagError::Unknown(a) => (b"unknown option %", a),
                    FlagError::MissingDelay => (b"-d needs SECONDS", b""),
                    FlagError::BadDelay(v) => (b"bad delay % (whole seconds)", v),
                    FlagError::Help => (b"", b""),
                };
                say(cmd, template, &[T(arg)]);
            }
            say(cmd, b"usage: % [-f] [-n] [-d SECONDS]  (-f: reboot(2) now, -n: no sync)", &[T(cmd.name().as_bytes())]);
            crate::sys::exit(code)
        }
    };
    if flags.delay_secs > 0 {
        crate::clock::sleep_secs(flags.delay_secs);
    }
    if flags.force {
        if !flags.no_sync {
            rustix::fs::sync();
        }
        let e = rustix::system::reboot(crate::power::reboot_command(cmd)).err().unwrap_or(rustix::io::Errno::INVAL);
        say(cmd, b"reboot(2) failed: %", &[E(e)]);
        crate::sys::exit(1)
    }
    match crate::sys::kill(1, signal_for(cmd)) {
        Ok(()) => crate::sys::exit(0),
        Err(e) => {
            say(cmd, b"cannot signal PID 1: %", &[E(e)]);
            crate::sys::exit(1)
        }
    }
}

/// `CMD: ` and `template` filled as `log::say` fills it, on stderr.
fn say(cmd: PowerCmd, template: &[u8], args: &[Part]) {
    let mut line = Line::new();
    line.push_bytes(cmd.name().as_bytes());
    line.push_bytes(b": ");
    crate::log::say::fill(&mut line, template, args);
    crate::log::write_console(&line.finish());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::power::signals::{request_for, Request};

    fn flags(args: &[&str]) -> Result<Flags, FlagError<'static>> {
        let v: Vec<&'static [u8]> = args.iter().map(|a| a.to_string().leak().as_bytes()).collect();
        parse_flags(v)
    }

    #[test]
    fn each_applet_signal_means_its_command_to_keel() {
        for cmd in [PowerCmd::Halt, PowerCmd::PowerOff, PowerCmd::Reboot] {
            assert_eq!(request_for(signal_for(cmd)), Some(Request::Power(cmd)));
        }
    }

    #[test]
    fn busybox_flags() {
        assert_eq!(flags(&[]), Ok(Flags::default()));
        assert_eq!(flags(&["-f"]), Ok(Flags { force: true, ..Flags::default() }));
        assert_eq!(flags(&["-fn"]), Ok(Flags { force: true, no_sync: true, delay_secs: 0 }));
        assert_eq!(flags(&["-d", "5"]), Ok(Flags { delay_secs: 5, ..Flags::default() }));
        assert_eq!(flags(&["-d5", "-n"]), Ok(Flags { delay_secs: 5, no_sync: true, force: false }));
        assert_eq!(flags(&["-nd", "7"]), Ok(Flags { delay_secs: 7, no_sync: true, force: false }));
    }

    #[test]
    fn bad_flags() {
        assert_eq!(flags(&["-x"]), Err(FlagError::Unknown(b"-x")));
        assert_eq!(flags(&["now"]), Err(FlagError::Unknown(b"now")));
        assert_eq!(flags(&["-"]), Err(FlagError::Unknown(b"-")));
        assert_eq!(flags(&["-d"]), Err(FlagError::MissingDelay));
        assert_eq!(flags(&["-d", "soon"]), Err(FlagError::BadDelay(b"soon")));
        assert_eq!(flags(&["--help"]), Err(FlagError::Help));
    }
}
