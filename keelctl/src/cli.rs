//! The command line: lexopt splits the words into options and values; what they mean, and
//! every message, is keelctl's own (docs/keelctl.md); the usage text.
//!
//! Options may come before or after the command word, in any order: `keelctl --unix S logs
//! -f` and `keelctl logs -f --unix S` are the same. Long options take their value as the
//! next word or after `=`, short ones also glued (`-n20`, `-n=20`); short flags combine
//! (`-vf`). `--` ends the options.
//!
//! `check`, `compile` and `image` work on files here and need no connection: the
//! connection options do not go with them, nor their options with the others.

use crate::image::{self, compress::Compress, Arch};
use keel_proto::{PowerCmd, MAX_NAME};
use std::path::PathBuf;
use std::time::Duration;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub const USAGE: &str = "\
usage: keelctl [--unix PATH | --serial DEV [--baud N] | --vsock CID:PORT |
                --vsock-unix PATH:PORT] [--shared] [--json] [--timeout SECS] [-v]
               COMMAND [ARGS]
       keelctl check FILE
       keelctl compile FILE -o OUT
       keelctl image -o OUT [--config FILE] [--modules-from DIR] [--modules-for CLASS]...
               [--busybox PATH] [--add HOST:GUEST]... [--sysroot DIR] [--keel PATH]
               [--arch ARCH] [--compress none|gzip|zstd] [-v]

Talks to keel (PID 1) over its debug protocol. More: docs/keelctl.md.

connection (one of):
  --unix PATH         a unix socket: keel's, or a QEMU `-chardev socket` behind a port
  --serial DEV        a serial device, set raw at --baud N (default 115200)
  --vsock CID:PORT    a VM's vsock port
  --vsock-unix PATH:PORT
                      a VM's vsock port through a hybrid-vsock unix socket (a
                      vhost-user backend's, Firecracker's): `CONNECT PORT` first
  --shared            the line also carries console text: frames in APC form
  --timeout SECS      how long to wait for keel's answers (default 5)
output:
  --json              one JSON object per line
  -v, --verbose       notes about the connection and skipped frames on stderr

commands:
  status                     uptime, ready time, memory, services
  services                   every service: NAME STATE PID RESTARTS
  start|stop|restart NAME    act on one service
  logs [-f] [-n N] [NAME]    log records (of one service); -f follows
  dmesg [-f] [-n N]          kernel log records
  logs|dmesg --previous [-n N]
                             the boot before this one (its pstore records): how it
                             ended, then keel's lines, or its kernel log
  events [-f] [--since N]    events numbered N and later
  reboot | poweroff | halt   power down
  ping                       round-trip time
  console                    the shared line, live: text and records out, keystrokes in
                             (implies --shared; Ctrl-] quits)

files (no connection; docs/image.md):
  check FILE                 validate a config file: every error as FILE:LINE: message
  compile FILE -o OUT        its compiled form, what keel reads at /etc/keel/keel.db
  image -o OUT               a bootable initramfs: keel as /init, the compiled --config,
                             the programs its services name and their libraries,
                             --busybox, --add files, kernel modules from --modules-from
    --config FILE            the system's config (none: keel's built-in table runs)
    --modules-from DIR       a module tree, /lib/modules/RELEASE (host's or a package's)
    --modules-for CLASS      also the drivers of a kind of hardware, loaded by coldplug:
                             virtio, block, nvme, mmc, usb, usb-storage, input, net, all
    --busybox PATH           busybox and its applet links in /bin
    --add HOST:GUEST         one more file (repeatable; mode kept)
    --sysroot DIR            programs, libraries and ld.so.conf from DIR, not /
    --keel PATH              keel (default: next to keelctl, else on PATH)
    --arch x86_64|aarch64    the guest's (default: this host's); every ELF is checked
    --compress none|gzip|zstd  (default none)
    --modules LIST           instead of keel's own modules (a,b); --omit-module NAME

exit status: 0 done, 1 the request failed (check, compile, image: the input has errors),
2 usage, 3 no connection or no answer
";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Unix(PathBuf),
    Serial { dev: PathBuf, baud: u32 },
    Vsock { cid: u32, port: u32 },
    /// A hybrid-vsock unix socket and the guest's port.
    VsockUnix { path: PathBuf, port: u32 },
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Unix(p) => write!(f, "{}", p.display()),
            Target::Serial { dev, .. } => write!(f, "{}", dev.display()),
            Target::Vsock { cid, port } => write!(f, "vsock {cid}:{port}"),
            Target::VsockUnix { path, port } => write!(f, "vsock {}:{port}", path.display()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Status,
    Services,
    Start(String),
    Stop(String),
    Restart(String),
    /// `previous`: the previous boot's (keel's lines only).
    Logs { follow: bool, tail: u16, service: String, previous: bool },
    Dmesg { follow: bool, tail: u16, previous: bool },
    Events { follow: bool, since: u32 },
    Power(PowerCmd),
    Ping,
    Console,
}

impl Command {
    /// May be sent again when no answer comes: asking twice is the same as asking once.
    /// Not start, stop, restart or power: keel does not recognise a repeated request, and a
    /// late answer (a slow line, a busy keel) would mean doing it twice. Not a follow: it
    /// may rightly say nothing for a long time.
    pub fn idempotent(&self) -> bool {
        match self {
            Command::Status | Command::Services | Command::Ping => true,
            Command::Logs { .. } | Command::Dmesg { .. } | Command::Events { .. } => !self.follows(),
            Command::Start(_) | Command::Stop(_) | Command::Restart(_) | Command::Power(_) | Command::Console => false,
        }
    }

    /// The command word (`restart`), for messages.
    pub fn word(&self) -> &'static str {
        match self {
            Command::Status => "status",
            Command::Services => "services",
            Command::Start(_) => "start",
            Command::Stop(_) => "stop",
            Command::Restart(_) => "restart",
            Command::Logs { .. } => "logs",
            Command::Dmesg { .. } => "dmesg",
            Command::Events { .. } => "events",
            Command::Power(p) => p.name(),
            Command::Ping => "ping",
            Command::Console => "console",
        }
    }

    /// A stream that goes on until Ctrl-C (no End, no timeout once it runs).
    pub fn follows(&self) -> bool {
        matches!(
            self,
            Command::Logs { follow: true, .. }
                | Command::Dmesg { follow: true, .. }
                | Command::Events { follow: true, .. }
        )
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub target: Target,
    /// Frames in APC form (a line shared with console text).
    pub shared: bool,
    pub json: bool,
    pub verbose: bool,
    pub timeout: Duration,
    pub command: Command,
}

/// The commands that work on files, with no connection.
#[derive(Clone, Debug, PartialEq)]
pub enum Local {
    Check(PathBuf),
    Compile { file: PathBuf, out: PathBuf },
    Image(image::Options),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Parsed {
    Run(Options),
    Local(Local),
    Help,
    Version,
}

/// `-n` without a value: every record keel still has.
pub const ALL: u16 = u16::MAX;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_BAUD: u32 = 115_200;

/// Everything the words say, before it is checked against the command.
#[derive(Default)]
struct Words {
    unix: Vec<String>,
    serial: Vec<String>,
    vsock: Vec<String>,
    vsock_unix: Vec<String>,
    baud: Option<String>,
    timeout: Option<String>,
    shared: bool,
    json: bool,
    verbose: bool,
    follow: bool,
    previous: bool,
    help: bool,
    version: bool,
    tail: Option<String>,
    since: Option<String>,
    positional: Vec<String>,
    // check, compile, image
    output: Option<String>,
    config: Option<String>,
    modules_from: Option<String>,
    modules: Option<String>,
    modules_for: Vec<String>,
    omit_module: Vec<String>,
    busybox: Option<String>,
    add: Vec<String>,
    sysroot: Option<String>,
    keel: Option<String>,
    arch: Option<String>,
    compress: Option<String>,
}

impl Words {
    /// The first connection or conversation option given, by name.
    fn protocol_option(&self) -> Option<&'static str> {
        [
            (!self.unix.is_empty(), "--unix"),
            (!self.serial.is_empty(), "--serial"),
            (!self.vsock.is_empty(), "--vsock"),
            (!self.vsock_unix.is_empty(), "--vsock-unix"),
            (self.baud.is_some(), "--baud"),
            (self.timeout.is_some(), "--timeout"),
            (self.shared, "--shared"),
            (self.json, "--json"),
            (self.follow, "-f"),
            (self.previous, "--previous"),
            (self.tail.is_some(), "-n"),
            (self.since.is_some(), "--since"),
        ]
        .into_iter()
        .find_map(|(given, name)| given.then_some(name))
    }

    /// The first option of `check`, `compile` or `image` given, by name.
    fn file_option(&self) -> Option<&'static str> {
        [
            (self.output.is_some(), "-o"),
            (self.config.is_some(), "--config"),
            (self.modules_from.is_some(), "--modules-from"),
            (self.modules.is_some(), "--modules"),
            (!self.modules_for.is_empty(), "--modules-for"),
            (!self.omit_module.is_empty(), "--omit-module"),
            (self.busybox.is_some(), "--busybox"),
            (!self.add.is_empty(), "--add"),
            (self.sysroot.is_some(), "--sysroot"),
            (self.keel.is_some(), "--keel"),
            (self.arch.is_some(), "--arch"),
            (self.compress.is_some(), "--compress"),
        ]
        .into_iter()
        .find_map(|(given, name)| given.then_some(name))
    }
}

/// Parse the arguments after the program name. Errors are the message for
/// `keelctl: MESSAGE` (the caller adds the usage and exits 2).
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Parsed, String> {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    // Help and version win over everything else, wherever they are (but not after `--`),
    // even over a bad option before them.
    for a in args.iter().take_while(|a| **a != "--") {
        match *a {
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            _ => {}
        }
    }
    let w = words(&args)?;
    // In a group of short flags (`-vh`).
    if w.help {
        return Ok(Parsed::Help);
    }
    if w.version {
        return Ok(Parsed::Version);
    }
    if let Some(word @ ("check" | "compile" | "image")) = w.positional.first().map(String::as_str) {
        if let Some(name) = w.protocol_option() {
            return Err(format!("{name} does not go with {word}"));
        }
        return local(&w, word).map(Parsed::Local);
    }
    if let (Some(name), Some(word)) = (w.file_option(), w.positional.first()) {
        return Err(format!("{name} does not go with {word}"));
    }
    let target = target(&w)?;
    let timeout = match &w.timeout {
        None => DEFAULT_TIMEOUT,
        Some(s) => match s.parse::<f64>() {
            Ok(t) if t > 0.0 && t <= 1e6 => Duration::from_secs_f64(t),
            _ => return Err(format!("--timeout: not a number of seconds: {s}")),
        },
    };
    let command = command(&w)?;
    let shared = w.shared || command == Command::Console;
    Ok(Parsed::Run(Options { target, shared, json: w.json, verbose: w.verbose, timeout, command }))
}

fn words(args: &[&str]) -> Result<Words, String> {
    use lexopt::Arg::{Long, Short, Value};
    let mut w = Words::default();
    let mut p = lexopt::Parser::from_args(args);
    // The arguments are UTF-8 (main checks), so nothing is lost here.
    let text = |v: std::ffi::OsString| v.to_string_lossy().into_owned();
    while let Some(arg) = p.next().map_err(message)? {
        match arg {
            Value(v) => w.positional.push(text(v)),
            Long("unix") => w.unix.push(text(p.value().map_err(message)?)),
            Long("serial") => w.serial.push(text(p.value().map_err(message)?)),
            Long("vsock") => w.vsock.push(text(p.value().map_err(message)?)),
            Long("vsock-unix") => w.vsock_unix.push(text(p.value().map_err(message)?)),
            Long("baud") => w.baud = Some(text(p.value().map_err(message)?)),
            Long("timeout") => w.timeout = Some(text(p.value().map_err(message)?)),
            Short('n') | Long("tail") => w.tail = Some(text(p.value().map_err(message)?)),
            Long("since") => w.since = Some(text(p.value().map_err(message)?)),
            Long("shared") => w.shared = true,
            Long("json") => w.json = true,
            Short('v') | Long("verbose") => w.verbose = true,
            Short('f') | Long("follow") => w.follow = true,
            Long("previous") => w.previous = true,
            Short('h') | Long("help") => w.help = true,
            Short('V') | Long("version") => w.version = true,
            Short('o') | Long("output") => w.output = Some(text(p.value().map_err(message)?)),
            Long("config") => w.config = Some(text(p.value().map_err(message)?)),
            Long("modules-from") => w.modules_from = Some(text(p.value().map_err(message)?)),
            Long("modules") => w.modules = Some(text(p.value().map_err(message)?)),
            Long("modules-for") => w.modules_for.push(text(p.value().map_err(message)?)),
            Long("omit-module") => w.omit_module.push(text(p.value().map_err(message)?)),
            Long("busybox") => w.busybox = Some(text(p.value().map_err(message)?)),
            Long("add") => w.add.push(text(p.value().map_err(message)?)),
            Long("sysroot") => w.sysroot = Some(text(p.value().map_err(message)?)),
            Long("keel") => w.keel = Some(text(p.value().map_err(message)?)),
            Long("arch") => w.arch = Some(text(p.value().map_err(message)?)),
            Long("compress") => w.compress = Some(text(p.value().map_err(message)?)),
            Short(c) => return Err(format!("unknown option -{c}")),
            Long(name) => return Err(format!("unknown option --{name}")),
        }
    }
    Ok(w)
}

/// lexopt's errors in keelctl's words (docs/keelctl.md).
fn message(e: lexopt::Error) -> String {
    match e {
        lexopt::Error::MissingValue { option: Some(name) } => format!("{name} needs a value"),
        lexopt::Error::UnexpectedValue { option, .. } => format!("{option} takes no value"),
        other => other.to_string(),
    }
}

fn target(w: &Words) -> Result<Target, String> {
    let given = w.unix.len() + w.serial.len() + w.vsock.len() + w.vsock_unix.len();
    if given == 0 {
        return Err("no connection: give --unix PATH, --serial DEV, --vsock CID:PORT or --vsock-unix PATH:PORT".into());
    }
    if given > 1 {
        return Err("give only one of --unix, --serial, --vsock and --vsock-unix".into());
    }
    if w.baud.is_some() && w.serial.is_empty() {
        return Err("--baud goes with --serial".into());
    }
    if let Some(path) = w.unix.first() {
        return Ok(Target::Unix(PathBuf::from(path)));
    }
    if let Some(dev) = w.serial.first() {
        let baud = match &w.baud {
            None => DEFAULT_BAUD,
            Some(b) => match b.parse::<u32>() {
                Ok(n) if n > 0 => n,
                _ => return Err(format!("--baud: not a baud rate: {b}")),
            },
        };
        return Ok(Target::Serial { dev: PathBuf::from(dev), baud });
    }
    if let Some(spec) = w.vsock_unix.first() {
        return vsock_unix(spec);
    }
    let spec = &w.vsock[0];
    let parsed = spec.split_once(':').and_then(|(c, p)| Some((c.parse::<u32>().ok()?, p.parse::<u32>().ok()?)));
    match parsed {
        Some((cid, port)) => Ok(Target::Vsock { cid, port }),
        None => Err(format!("--vsock: expected CID:PORT (two numbers), got {spec}")),
    }
}

/// `PATH:PORT`, split at the last colon (a path may have colons of its own).
fn vsock_unix(spec: &str) -> Result<Target, String> {
    let parsed = spec.rsplit_once(':').filter(|(path, _)| !path.is_empty());
    match parsed.and_then(|(path, port)| Some((path, port.parse::<u32>().ok()?))) {
        Some((path, port)) => Ok(Target::VsockUnix { path: PathBuf::from(path), port }),
        None => Err(format!("--vsock-unix: expected PATH:PORT (PORT a number), got {spec}")),
    }
}

fn command(w: &Words) -> Result<Command, String> {
    let Some((word, args)) = w.positional.split_first() else {
        return Err("no command".into());
    };
    let word = word.as_str();
    // Which command-specific options each command takes.
    let (follow_ok, tail_ok, since_ok) = match word {
        "logs" | "dmesg" => (true, true, false),
        "events" => (true, false, true),
        _ => (false, false, false),
    };
    for (given, ok, name) in [
        (w.follow, follow_ok, "-f"),
        (w.previous, tail_ok, "--previous"),
        (w.tail.is_some(), tail_ok, "-n"),
        (w.since.is_some(), since_ok, "--since"),
    ] {
        if given && !ok {
            return Err(format!("{name} does not go with {word}"));
        }
    }
    if w.previous && w.follow {
        return Err("--previous does not go with -f: the previous boot is over".into());
    }
    if w.previous && !args.is_empty() {
        return Err("logs --previous: no service's output is kept across boots, only keel's own lines".into());
    }
    let max_args = match word {
        "start" | "stop" | "restart" | "logs" => 1,
        _ => 0,
    };
    if args.len() > max_args {
        return Err(format!("{word}: unexpected argument {}", args[max_args]));
    }
    let tail = match &w.tail {
        None => ALL,
        // More than keel can hold is all of it.
        Some(n) => n.parse::<u64>().map_err(|_| format!("-n: not a number: {n}"))?.min(u64::from(ALL)) as u16,
    };
    let name = |what: &str| -> Result<String, String> {
        let name = args.first().ok_or(format!("{what} needs a service name"))?;
        check_name(name)?;
        Ok(name.clone())
    };
    Ok(match word {
        "status" => Command::Status,
        "services" => Command::Services,
        "start" => Command::Start(name("start")?),
        "stop" => Command::Stop(name("stop")?),
        "restart" => Command::Restart(name("restart")?),
        "logs" => {
            let service = args.first().cloned().unwrap_or_default();
            if !service.is_empty() {
                check_name(&service)?;
            }
            Command::Logs { follow: w.follow, tail, service, previous: w.previous }
        }
        "dmesg" => Command::Dmesg { follow: w.follow, tail, previous: w.previous },
        "events" => {
            let since = match &w.since {
                None => 0,
                Some(n) => n.parse::<u32>().map_err(|_| format!("--since: not an event number: {n}"))?,
            };
            Command::Events { follow: w.follow, since }
        }
        "reboot" => Command::Power(PowerCmd::Reboot),
        "poweroff" => Command::Power(PowerCmd::PowerOff),
        "halt" => Command::Power(PowerCmd::Halt),
        "ping" => Command::Ping,
        "console" => Command::Console,
        other => return Err(format!("unknown command {other}")),
    })
}

/// `check FILE`, `compile FILE -o OUT`, `image -o OUT [options]`.
fn local(w: &Words, word: &str) -> Result<Local, String> {
    let args = &w.positional[1..];
    let only = |allowed: &[&str]| -> Result<(), String> {
        match w.file_option() {
            Some(name) if !allowed.contains(&name) => Err(format!("{name} does not go with {word}")),
            _ => Ok(()),
        }
    };
    let output = || w.output.as_ref().map(PathBuf::from).ok_or(format!("{word} needs -o OUT"));
    let one_file = || match args {
        [file] => Ok(PathBuf::from(file)),
        [] => Err(format!("{word} needs a FILE")),
        [_, extra, ..] => Err(format!("{word}: unexpected argument {extra}")),
    };
    match word {
        "check" => {
            only(&[])?;
            Ok(Local::Check(one_file()?))
        }
        "compile" => {
            only(&["-o"])?;
            Ok(Local::Compile { file: one_file()?, out: output()? })
        }
        _ => {
            if let Some(extra) = args.first() {
                return Err(format!("image: unexpected argument {extra} (the config goes after --config)"));
            }
            image_options(w, output()?)
        }
    }
}

fn image_options(w: &Words, output: PathBuf) -> Result<Local, String> {
    let add = w
        .add
        .iter()
        .map(|spec| match spec.find(":/") {
            Some(i) if i > 0 => Ok((PathBuf::from(&spec[..i]), spec[i + 1..].to_string())),
            _ => Err(format!("--add: expected HOST:/GUEST/PATH, got {spec}")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let arch = match &w.arch {
        None => None,
        Some(a) => Some(Arch::parse(a).ok_or(format!("--arch: x86_64 or aarch64, not {a}"))?),
    };
    let compress = match &w.compress {
        None => Compress::None,
        Some(c) => Compress::parse(c).ok_or(format!("--compress: none, gzip or zstd, not {c}"))?,
    };
    let modules = w.modules.as_ref().map(|list| list.split([',', ' ']).filter(|m| !m.is_empty()).map(String::from).collect());
    Ok(Local::Image(image::Options {
        output,
        config: w.config.as_ref().map(PathBuf::from),
        modules_from: w.modules_from.as_ref().map(PathBuf::from),
        modules,
        modules_for: w.modules_for.iter().flat_map(|l| l.split([',', ' '])).filter(|c| !c.is_empty()).map(String::from).collect(),
        omit_modules: w.omit_module.clone(),
        busybox: w.busybox.as_ref().map(PathBuf::from),
        add,
        sysroot: w.sysroot.as_ref().map(PathBuf::from),
        keel: w.keel.as_ref().map(PathBuf::from),
        arch,
        compress,
        verbose: w.verbose,
    }))
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("a service name is 1 to {MAX_NAME} bytes: {name:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Options {
        match parse(args) {
            Ok(Parsed::Run(o)) => o,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn err(args: &[&str]) -> String {
        match parse(args) {
            Err(e) => e,
            other => panic!("{args:?} should fail: {other:?}"),
        }
    }

    #[test]
    fn targets() {
        let o = run(&["--unix", "/run/keel.sock", "status"]);
        assert_eq!(o.target, Target::Unix("/run/keel.sock".into()));
        assert_eq!((o.shared, o.json, o.verbose, o.timeout), (false, false, false, DEFAULT_TIMEOUT));
        assert_eq!(o.command, Command::Status);
        let o = run(&["--serial=/dev/ttyUSB0", "ping"]);
        assert_eq!(o.target, Target::Serial { dev: "/dev/ttyUSB0".into(), baud: 115_200 });
        let o = run(&["ping", "--serial", "/dev/ttyS1", "--baud", "9600"]);
        assert_eq!(o.target, Target::Serial { dev: "/dev/ttyS1".into(), baud: 9600 });
        assert_eq!(run(&["--vsock", "3:1024", "status"]).target, Target::Vsock { cid: 3, port: 1024 });
        assert_eq!(run(&["--vsock", "3:1024", "status"]).target.to_string(), "vsock 3:1024");
        let o = run(&["--vsock-unix", "/tmp/vm:3/vsock.sock:1024", "status"]);
        assert_eq!(o.target, Target::VsockUnix { path: "/tmp/vm:3/vsock.sock".into(), port: 1024 });
        assert_eq!(o.target.to_string(), "vsock /tmp/vm:3/vsock.sock:1024");
        let o = run(&["status", "--vsock-unix=v.sock:1"]);
        assert_eq!(o.target, Target::VsockUnix { path: "v.sock".into(), port: 1 });
    }

    #[test]
    fn bad_targets() {
        assert!(err(&["status"]).starts_with("no connection"));
        assert!(err(&["--unix", "a", "--serial", "b", "status"]).contains("only one"));
        assert!(err(&["--unix", "a", "--unix", "b", "status"]).contains("only one"));
        assert!(err(&["--unix", "a", "--baud", "9600", "status"]).contains("--baud"));
        assert!(err(&["--serial", "a", "--baud", "fast", "status"]).contains("baud rate"));
        assert!(err(&["--serial", "a", "--baud", "0", "status"]).contains("baud rate"));
        for bad in ["3", "3:", ":5", "x:5", "3:5:6", "-1:5"] {
            assert!(err(&["--vsock", bad, "status"]).contains("CID:PORT"), "{bad}");
        }
        for bad in ["v.sock", "v.sock:", ":1024", "v.sock:x", "v.sock:-1", "v.sock:4294967296"] {
            assert!(err(&["--vsock-unix", bad, "status"]).contains("PATH:PORT"), "{bad}");
        }
        assert!(err(&["--vsock-unix", "v:1", "--vsock", "3:1", "status"]).contains("only one"));
        assert_eq!(err(&["status", "--unix"]), "--unix needs a value");
    }

    #[test]
    fn global_options_anywhere() {
        let o = run(&["--json", "-v", "--unix", "s", "--timeout", "0.25", "--shared", "services"]);
        assert!(o.json && o.verbose && o.shared);
        assert_eq!(o.timeout, Duration::from_millis(250));
        assert_eq!(o.command, Command::Services);
        let o = run(&["services", "--timeout=2", "--unix=s", "--json"]);
        assert!(o.json);
        assert_eq!(o.timeout, Duration::from_secs(2));
        for bad in ["0", "-1", "x", "nan", "inf", ""] {
            assert!(err(&["--unix", "s", "--timeout", bad, "status"]).contains("--timeout"), "{bad:?}");
        }
    }

    #[test]
    fn commands() {
        let c = |args: &[&str]| {
            let mut all = vec!["--unix", "s"];
            all.extend_from_slice(args);
            run(&all).command
        };
        assert_eq!(c(&["start", "sshd"]), Command::Start("sshd".into()));
        assert_eq!(c(&["stop", "sshd"]), Command::Stop("sshd".into()));
        assert_eq!(c(&["restart", "--", "-odd"]), Command::Restart("-odd".into()));
        assert_eq!(c(&["reboot"]), Command::Power(PowerCmd::Reboot));
        assert_eq!(c(&["poweroff"]), Command::Power(PowerCmd::PowerOff));
        assert_eq!(c(&["halt"]), Command::Power(PowerCmd::Halt));
        assert_eq!(c(&["ping"]), Command::Ping);
        assert_eq!(c(&["logs"]), Command::Logs { follow: false, tail: ALL, service: String::new(), previous: false });
        assert_eq!(
            c(&["logs", "-f", "-n", "20", "sshd"]),
            Command::Logs { follow: true, tail: 20, service: "sshd".into(), previous: false }
        );
        assert_eq!(c(&["-f", "logs", "-n5"]), Command::Logs { follow: true, tail: 5, service: String::new(), previous: false });
        assert_eq!(
            c(&["logs", "--tail=0", "--follow"]),
            Command::Logs { follow: true, tail: 0, service: String::new(), previous: false }
        );
        assert_eq!(c(&["logs", "-n", "1000000"]), Command::Logs { follow: false, tail: ALL, service: String::new(), previous: false });
        assert_eq!(c(&["dmesg", "-n", "3"]), Command::Dmesg { follow: false, tail: 3, previous: false });
        assert_eq!(c(&["dmesg", "-f"]), Command::Dmesg { follow: true, tail: ALL, previous: false });
        assert_eq!(c(&["logs", "--previous", "-n", "5"]), Command::Logs { follow: false, tail: 5, service: String::new(), previous: true });
        assert_eq!(c(&["--previous", "dmesg"]), Command::Dmesg { follow: false, tail: ALL, previous: true });
        assert!(c(&["dmesg", "--previous"]).idempotent());
        assert_eq!(c(&["events"]), Command::Events { follow: false, since: 0 });
        assert_eq!(c(&["events", "-f", "--since", "42"]), Command::Events { follow: true, since: 42 });
        assert!(c(&["events", "-f"]).follows());
        assert!(!c(&["logs"]).follows());
        // console always uses the shared-line form.
        let o = run(&["--unix", "s", "console"]);
        assert_eq!((o.command, o.shared), (Command::Console, true));
    }

    #[test]
    fn bad_commands() {
        let e = |args: &[&str]| {
            let mut all = vec!["--unix", "s"];
            all.extend_from_slice(args);
            err(&all)
        };
        assert_eq!(e(&[]), "no command");
        assert_eq!(e(&["frobnicate"]), "unknown command frobnicate");
        assert_eq!(e(&["start"]), "start needs a service name");
        assert!(e(&["start", &"x".repeat(33)]).contains("1 to 32 bytes"));
        assert!(e(&["logs", &"x".repeat(33)]).contains("1 to 32 bytes"));
        assert_eq!(e(&["start", "a", "b"]), "start: unexpected argument b");
        assert_eq!(e(&["status", "extra"]), "status: unexpected argument extra");
        assert_eq!(e(&["status", "-f"]), "-f does not go with status");
        assert_eq!(e(&["events", "-n", "3"]), "-n does not go with events");
        assert_eq!(e(&["logs", "--since", "3"]), "--since does not go with logs");
        assert_eq!(e(&["status", "--previous"]), "--previous does not go with status");
        assert_eq!(e(&["events", "--previous"]), "--previous does not go with events");
        assert_eq!(e(&["dmesg", "--previous", "-f"]), "--previous does not go with -f: the previous boot is over");
        assert_eq!(e(&["logs", "--previous", "sshd"]), "logs --previous: no service's output is kept across boots, only keel's own lines");
        assert_eq!(e(&["dmesg", "--previous=yes"]), "--previous takes no value");
        assert_eq!(e(&["logs", "-n", "many"]), "-n: not a number: many");
        assert_eq!(e(&["logs", "-n", "-1"]), "-n: not a number: -1");
        assert_eq!(e(&["events", "--since", "x"]), "--since: not an event number: x");
        assert_eq!(e(&["status", "--bogus"]), "unknown option --bogus");
        assert_eq!(e(&["status", "-x"]), "unknown option -x");
        assert_eq!(e(&["status", "--json=yes"]), "--json takes no value");
        assert_eq!(e(&["logs", "-n"]), "-n needs a value");
        assert_eq!(e(&["status", "-v=x"]), "-v takes no value");
        assert_eq!(e(&["status", "-vx"]), "unknown option -x");
    }

    #[test]
    fn short_flags_combine_and_take_glued_values() {
        let o = run(&["--unix", "s", "logs", "-vfn=20"]);
        assert!(o.verbose);
        assert_eq!(o.command, Command::Logs { follow: true, tail: 20, service: String::new(), previous: false });
        assert_eq!(run(&["--unix", "s", "dmesg", "-n=3"]).command, Command::Dmesg { follow: false, tail: 3, previous: false });
        assert_eq!(parse(&["--unix", "s", "status", "-vh"]), Ok(Parsed::Help));
        assert_eq!(parse(&["-vV"]), Ok(Parsed::Version));
        // A value may look like an option.
        assert_eq!(err(&["--unix", "s", "logs", "-n", "-5"]), "-n: not a number: -5");
        assert_eq!(run(&["--unix", "-", "status"]).target, Target::Unix("-".into()));
    }

    #[test]
    fn only_what_is_safe_to_ask_twice_is_retried() {
        let c = |args: &[&str]| {
            let mut all = vec!["--unix", "s"];
            all.extend_from_slice(args);
            run(&all).command
        };
        for args in [&["status"][..], &["services"], &["ping"], &["logs", "sshd"], &["dmesg"], &["events"]] {
            assert!(c(args).idempotent(), "{args:?}");
        }
        for args in [
            &["start", "a"][..],
            &["stop", "a"],
            &["restart", "a"],
            &["reboot"],
            &["poweroff"],
            &["halt"],
            &["logs", "-f"],
            &["dmesg", "-f"],
            &["events", "-f"],
            &["console"],
        ] {
            assert!(!c(args).idempotent(), "{args:?}");
        }
        assert_eq!(c(&["poweroff"]).word(), "poweroff");
        assert_eq!(c(&["restart", "a"]).word(), "restart");
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse(&["--help"]), Ok(Parsed::Help));
        assert_eq!(parse(&["status", "-h"]), Ok(Parsed::Help));
        assert_eq!(parse(&["--bogus", "--version"]), Ok(Parsed::Version));
        assert_eq!(parse(&["-V"]), Ok(Parsed::Version));
        // After `--` it is a word like any other.
        assert!(parse(&["--unix", "s", "start", "--", "--help"]).is_ok());
        assert!(USAGE.starts_with("usage: keelctl"));
    }
}
