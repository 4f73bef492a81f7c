//! The command line and environment of container mode: `keel [FLAGS] [--] PROGRAM [ARGS...]`
//! (tini's flags), `KEEL_KILL_PROCESS_GROUP` and `KEEL_GRACE`, signal names for `-p`, and
//! `wanted`: whether argv asks for container mode at all. Pure: no system calls.

use crate::config::cmdline::parse_u32;

/// Seconds orphans get between SIGTERM and SIGKILL once the child has exited (`KEEL_GRACE`).
pub const DEFAULT_GRACE_SECS: u32 = 5;

/// `-e CODE`: exit codes that become 0, one bit each.
#[derive(Copy, Clone, Default, Debug, PartialEq, Eq)]
pub struct ExitCodes([u64; 4]);

impl ExitCodes {
    pub fn insert(&mut self, code: u8) {
        self.0[code as usize / 64] |= 1 << (code % 64);
    }
    pub fn contains(&self, code: i32) -> bool {
        (0..256).contains(&code) && self.0[code as usize / 64] & 1 << (code % 64) != 0
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Where PROGRAM is in argv.
    pub program: usize,
    /// -g: signals go to the child's whole process group (it always leads its own).
    pub group: bool,
    /// -v: log each reaped process.
    pub verbose: bool,
    /// -p SIGNAL: what keel gets when its parent dies.
    pub parent_death_signal: Option<u32>,
    pub success: ExitCodes,
    pub grace_secs: u32,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Options),
    Help,
    Version,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Problem<'a> {
    Unknown(&'a [u8]),
    MissingValue(u8),
    BadCode(&'a [u8]),
    BadSignal(&'a [u8]),
    NoProgram,
    BadEnv(&'a [u8]),
}

/// Parse argv[1..]: flags (grouped like `-gv`, values attached or next: `-e3`, `-e 3`), then
/// `--` or PROGRAM. Everything from PROGRAM on belongs to PROGRAM.
/// (`dyn`: one copy in the binary for its two callers, `wanted` and `run`.)
pub fn parse<'a>(words: &mut dyn Iterator<Item = &'a [u8]>) -> Result<Parsed, Problem<'a>> {
    let mut o = Options {
        program: 0,
        group: false,
        verbose: false,
        parent_death_signal: None,
        success: ExitCodes::default(),
        grace_secs: DEFAULT_GRACE_SECS,
    };
    let mut index = 0; // argv index of `word`
    while let Some(word) = words.next() {
        index += 1;
        match word {
            b"--" => {
                words.next().ok_or(Problem::NoProgram)?;
                o.program = index + 1;
                return Ok(Parsed::Run(o));
            }
            b"--help" | b"-h" => return Ok(Parsed::Help),
            b"--version" => return Ok(Parsed::Version),
            _ => {}
        }
        let Some(letters) = word.strip_prefix(b"-") else {
            o.program = index;
            return Ok(Parsed::Run(o));
        };
        if letters.is_empty() {
            return Err(Problem::Unknown(word));
        }
        for (i, &letter) in letters.iter().enumerate() {
            match letter {
                b's' => {} // tini's "subreaper": keel always is one
                b'g' => o.group = true,
                b'v' => o.verbose = true,
                b'e' | b'p' => {
                    let value = match letters.get(i + 1..).unwrap_or_default() {
                        [] => {
                            index += 1;
                            words.next().ok_or(Problem::MissingValue(letter))?
                        }
                        attached => attached,
                    };
                    if letter == b'e' {
                        let code = parse_u32(value).filter(|&c| c <= 255).ok_or(Problem::BadCode(value))?;
                        o.success.insert(code as u8);
                    } else {
                        o.parent_death_signal = Some(signal_number(value).ok_or(Problem::BadSignal(value))?);
                    }
                    break;
                }
                _ => return Err(Problem::Unknown(word)),
            }
        }
    }
    Err(Problem::NoProgram)
}

/// One `KEY=value` of keel's environment: `KEEL_KILL_PROCESS_GROUP` (set, not empty or 0)
/// is -g; `KEEL_GRACE=SECONDS` sets the orphans' grace.
pub fn apply_env<'a>(o: &mut Options, var: &'a [u8]) -> Result<(), Problem<'a>> {
    if let Some(value) = var.strip_prefix(b"KEEL_KILL_PROCESS_GROUP=") {
        o.group |= !matches!(value, b"" | b"0");
    } else if let Some(value) = var.strip_prefix(b"KEEL_GRACE=") {
        o.grace_secs = parse_u32(value).ok_or(Problem::BadEnv(var))?;
    }
    Ok(())
}

/// `SIGKILL`, `KILL` or `9` (standard signals only: what PR_SET_PDEATHSIG users pass): the
/// configuration's grammar (`stop_signal`).
pub use keel_config::values::signal_number;

/// Whether argv (after argv[0]) asks for container mode: any argument but a `keel.*` word.
/// The kernel hands the machine's init every command-line word it does not know (`single`,
/// `3`): that must not end the machine, so there only a valid command line whose PROGRAM is
/// a path counts (`init=/sbin/keel -- /bin/app`).
pub fn wanted<'a>(words: impl Iterator<Item = &'a [u8]> + Clone, machine_init: impl FnOnce() -> bool) -> bool {
    match words.clone().next() {
        None => false,
        Some(first) if first.starts_with(b"keel.") => false,
        Some(_) if !machine_init() => true,
        Some(_) => match parse(&mut words.clone()) {
            Ok(Parsed::Run(o)) => words.clone().nth(o.program - 1).is_some_and(|p| p.contains(&b'/')),
            _ => false,
        },
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&'static str]) -> Result<Parsed, Problem<'static>> {
        parse(&mut args.iter().map(|a| a.as_bytes()))
    }

    fn opts(args: &[&'static str]) -> Options {
        match run(args) {
            Ok(Parsed::Run(o)) => o,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn program_index_after_flags_and_dashes() {
        assert_eq!(opts(&["true"]).program, 1);
        assert_eq!(opts(&["--", "true", "-x"]).program, 2);
        assert_eq!(opts(&["-g", "--", "true"]).program, 3);
        assert_eq!(opts(&["-e", "3", "sh", "-c", "x"]).program, 3);
        assert_eq!(opts(&["-e3", "-v", "--", "-dashed-prog"]).program, 4);
        // Flags after PROGRAM are PROGRAM's.
        let o = opts(&["sh", "-g"]);
        assert!(!o.group);
    }

    #[test]
    fn flags() {
        let o = opts(&["-gvs", "-e", "3", "-e143", "-p", "SIGKILL", "--", "x"]);
        assert!(o.group && o.verbose);
        assert!(o.success.contains(3) && o.success.contains(143) && !o.success.contains(0));
        assert_eq!(o.parent_death_signal, Some(9));
        assert_eq!(opts(&["-pTERM", "x"]).parent_death_signal, Some(15));
        assert_eq!(opts(&["-p", "1", "x"]).parent_death_signal, Some(1));
        assert_eq!(opts(&["-e", "255", "x"]).success.contains(255), true);
        let defaults = Options {
            program: 1,
            group: false,
            verbose: false,
            parent_death_signal: None,
            success: ExitCodes::default(),
            grace_secs: DEFAULT_GRACE_SECS,
        };
        assert_eq!(opts(&["x"]), defaults);
        assert_eq!(run(&["--help", "x"]), Ok(Parsed::Help));
        assert_eq!(run(&["-h"]), Ok(Parsed::Help));
        assert_eq!(run(&["-g", "--version"]), Ok(Parsed::Version));
    }

    #[test]
    fn bad_command_lines() {
        assert_eq!(run(&[]), Err(Problem::NoProgram));
        assert_eq!(run(&["--"]), Err(Problem::NoProgram));
        assert_eq!(run(&["-g"]), Err(Problem::NoProgram));
        assert_eq!(run(&["-x", "true"]), Err(Problem::Unknown(b"-x")));
        assert_eq!(run(&["-gx", "true"]), Err(Problem::Unknown(b"-gx")));
        assert_eq!(run(&["--frob", "true"]), Err(Problem::Unknown(b"--frob")));
        assert_eq!(run(&["-", "true"]), Err(Problem::Unknown(b"-")));
        assert_eq!(run(&["-e"]), Err(Problem::MissingValue(b'e')));
        assert_eq!(run(&["-e", "256", "x"]), Err(Problem::BadCode(b"256")));
        assert_eq!(run(&["-e", "-1", "x"]), Err(Problem::BadCode(b"-1")));
        assert_eq!(run(&["-p", "SIGNOPE", "x"]), Err(Problem::BadSignal(b"SIGNOPE")));
        assert_eq!(run(&["-p", "0", "x"]), Err(Problem::BadSignal(b"0")));
        assert_eq!(run(&["-p", "40", "x"]), Err(Problem::BadSignal(b"40")));
    }

    #[test]
    fn environment() {
        let mut o = opts(&["x"]);
        apply_env(&mut o, b"KEEL_KILL_PROCESS_GROUP=0").unwrap();
        apply_env(&mut o, b"KEEL_GRACE=2").unwrap();
        apply_env(&mut o, b"PATH=/bin").unwrap();
        assert!(!o.group);
        assert_eq!(o.grace_secs, 2);
        apply_env(&mut o, b"KEEL_KILL_PROCESS_GROUP=1").unwrap();
        assert!(o.group);
        assert_eq!(apply_env(&mut o, b"KEEL_GRACE=soon"), Err(Problem::BadEnv(b"KEEL_GRACE=soon")));
    }

    #[test]
    fn signal_names() {
        let known = [("SIGHUP", 1), ("INT", 2), ("SIGKILL", 9), ("USR1", 10), ("SIGTERM", 15), ("SIGCHLD", 17)];
        for (name, n) in known.into_iter().chain([("SIGWINCH", 28), ("SYS", 31), ("31", 31)]) {
            assert_eq!(signal_number(name.as_bytes()), Some(n), "{name}");
        }
        for name in ["", "SIG", "sigkill", "32", "SIGRTMIN", "KILLX"] {
            assert_eq!(signal_number(name.as_bytes()), None, "{name}");
        }
        // Whatever -p accepts, rustix can pass on.
        for n in 1..=31 {
            assert!(rustix::process::Signal::from_named_raw(n).is_some(), "signal {n}");
        }
    }

    #[test]
    fn dispatch() {
        let w = |words: &[&'static str], machine: bool| wanted(words.iter().map(|w| w.as_bytes()), || machine);
        assert!(!w(&[], false));
        assert!(w(&["--", "true"], false));
        assert!(w(&["true"], false));
        assert!(w(&["-x"], false), "bad flags still get container mode's usage");
        assert!(!w(&["keel.shutdown_timeout=3"], false));
        assert!(!w(&["keel.x", "keel.y"], true));
        // The machine's init: only a valid command line with a path.
        assert!(!w(&["single"], true));
        assert!(!w(&["3"], true));
        assert!(!w(&["-b"], true));
        assert!(!w(&["--", "sh"], true));
        assert!(w(&["/bin/sh", "-c", "x"], true));
        assert!(w(&["-g", "--", "/app/run"], true));
    }
}
