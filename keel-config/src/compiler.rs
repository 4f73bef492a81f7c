//! The configuration compiler, run on the host (keel's build.rs for the built-in table,
//! `keelctl check` and `keelctl compile` for a file read at boot): a small TOML subset in,
//! a validated `Config` out, which `db::emit` turns into the compiled form PID 1 reads.
//! Every error names its line, and all errors are reported, not just the first.
//!
//! Format (docs/services.md, docs/root.md): `[system]`, `[debug]`, `[root]`, `[service.NAME]`
//! and `[mount.NAME]` tables of `key = value` lines; values are "strings", integers, true/false, ["arrays", "of",
//! "strings"] and durations ("100ms", "30s", "2m"; a bare integer is milliseconds).

use crate::channel;
use crate::values::{self, PanicPolicy};
use std::collections::BTreeMap;
use std::fmt;

/// Capacities of PID 1's tables; exceeding one is an error here, never a surprise at boot.
pub const MAX_SERVICES: usize = 128;
pub const MAX_ARGS: usize = 16;
pub const MAX_ENV: usize = 16;
pub const MAX_DEPS: usize = 8;
pub const MAX_STRING: usize = 255;
pub const MAX_CHANNELS: usize = 4;
pub const MAX_MODULES: usize = 32;
pub const MAX_MOUNTS: usize = 16;
pub const MIN_RING: u64 = 256;
pub const MAX_RING: u64 = 65536;
/// All services' log rings together (PID 1 keeps one pool of this size, untouched until used).
pub const MAX_RING_TOTAL: u64 = 512 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(u64),
    Bool(bool),
    List(Vec<String>),
}

/// The whole system as the file describes it; defaults for what it leaves out.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub system: System,
    pub services: Vec<Service>,
    /// `[debug] channels = ["ttyS1:rw", "vsock:1024:ro"]` (docs/protocol.md).
    pub debug_channels: Vec<String>,
    /// `[root]`: the root to switch to from an initramfs (docs/root.md).
    pub root: Root,
    /// `[mount.NAME]` tables, in file order.
    pub mounts: Vec<Mount>,
}

/// `[root]` as written; the kernel command line's root=, rootfstype=... win at boot.
#[derive(Debug, Clone, PartialEq)]
pub struct Root {
    pub line: usize,
    /// A `root=` value (values::Device).
    pub device: Option<String>,
    /// Types to try, comma-separated.
    pub fstype: Option<String>,
    pub options: Option<String>,
    pub read_only: bool,
    pub wait_secs: Option<u32>,
    pub delay_secs: u32,
    pub init: Option<String>,
    pub fsck: bool,
    /// Service names the emergency path runs; None: the services with a tty.
    pub rescue: Option<Vec<String>>,
}

impl Default for Root {
    fn default() -> Self {
        Root { line: 0, device: None, fstype: None, options: None, read_only: false, wait_secs: None, delay_secs: 0, init: None, fsck: true, rescue: None }
    }
}

/// `[mount.NAME]`: mounted after the root, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    pub name: String,
    pub line: usize,
    pub source: String,
    pub target: String,
    pub fstype: Option<String>,
    pub options: Option<String>,
    pub required: bool,
    pub wait_secs: u32,
}

impl Mount {
    /// How long a mount waits for its device unless `wait` says.
    pub const DEFAULT_WAIT_SECS: u32 = 10;

    fn new(name: &str, line: usize) -> Mount {
        Mount {
            name: name.into(),
            line,
            source: String::new(),
            target: String::new(),
            fstype: None,
            options: None,
            required: true,
            wait_secs: Self::DEFAULT_WAIT_SECS,
        }
    }

    fn set(&mut self, key: &str, value: Value) -> Result<(), String> {
        match key {
            "source" => {
                let v = string(value)?;
                if v.is_empty() || v.contains(char::is_whitespace) {
                    return Err(format!("{v:?} is not {} or a name like \"tmpfs\"", values::Device::EXPECTED));
                }
                if v.starts_with(['U', 'L', 'P']) && v.contains('=') && values::Device::parse(v.as_bytes()).is_none() {
                    return Err(format!("{v:?} is not {}", values::Device::EXPECTED));
                }
                self.source = v;
            }
            "target" => self.target = absolute(string(value)?)?,
            "type" => self.fstype = Some(fstypes(value, false)?),
            "options" => self.options = Some(string(value)?),
            "required" => self.required = boolean(value)?,
            "wait" => self.wait_secs = (seconds_ms(value)? / 1000) as u32,
            other => return Err(format!("unknown key {other:?}")),
        }
        Ok(())
    }

}

fn set_root(root: &mut Root, key: &str, value: Value) -> Result<(), String> {
    let at = |m: String| format!("{key}: {m}");
    match key {
        "device" => {
            let v = string(value).map_err(at)?;
            if values::Device::parse(v.as_bytes()).is_none() {
                return Err(at(format!("{v:?} is not {}", values::Device::EXPECTED)));
            }
            root.device = Some(v);
        }
        "fstype" => root.fstype = Some(fstypes(value, true).map_err(at)?),
        "options" => root.options = Some(string(value).map_err(at)?),
        "read_only" => root.read_only = boolean(value).map_err(at)?,
        "wait" => root.wait_secs = Some((seconds_ms(value).map_err(at)? / 1000) as u32),
        "delay" => root.delay_secs = (seconds_ms(value).map_err(at)? / 1000) as u32,
        "init" => root.init = Some(absolute(string(value).map_err(at)?).map_err(at)?),
        "fsck" => root.fsck = boolean(value).map_err(at)?,
        "rescue" => root.rescue = Some(strings(value, MAX_SERVICES).map_err(at)?),
        other => return Err(format!("unknown key {other:?} in [root]")),
    }
    Ok(())
}

/// A filesystem type, or (`list`) types separated by commas.
fn fstypes(value: Value, list: bool) -> Result<String, String> {
    let v = string(value)?;
    let ok = if list { v.split(',').all(|t| values::valid_fstype(t.as_bytes())) } else { values::valid_fstype(v.as_bytes()) };
    if !ok {
        let what = if list { "filesystem types (ext4 or ext4,xfs)" } else { "a filesystem type (ext4, vfat, tmpfs...)" };
        return Err(format!("{v:?} is not {what}"));
    }
    Ok(v)
}

/// `[system]`: what the kernel command line's `keel.*` keys also set (they win).
#[derive(Debug, Clone, PartialEq)]
pub struct System {
    pub hostname: Option<String>,
    /// Kernel modules to load at boot besides keel's own list.
    pub modules: Vec<String>,
    pub shutdown_timeout_ms: u64,
    pub sync_timeout_ms: u64,
    pub panic: PanicPolicy,
    /// `DEVICE[:SECONDS]` (values::Watchdog), as written.
    pub watchdog: Option<String>,
    /// End every poweroff with a reboot (Firecracker ends the VM only on a guest reboot).
    pub poweroff_reboots: bool,
    /// Load the modules the hardware's modaliases name (`modules.alias`).
    pub coldplug: bool,
}

impl Default for System {
    fn default() -> Self {
        System {
            hostname: None,
            modules: Vec::new(),
            shutdown_timeout_ms: 10_000,
            sync_timeout_ms: 30_000,
            panic: PanicPolicy::DEFAULT,
            watchdog: None,
            poweroff_reboots: false,
            coldplug: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    pub line: usize,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub tty: Option<String>,
    pub after: Vec<String>,
    /// `[mount.NAME]`s the service needs mounted: it stays down if one fails.
    pub mounts: Vec<String>,
    pub restart: Restart,
    pub oneshot: bool,
    pub ready: Ready,
    pub ready_timeout_ms: u64,
    pub stop_signal: u32,
    pub stop_grace_ms: u64,
    pub log_ring: u64,
    pub echo: bool,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    pub stable_after_ms: u64,
    pub max_failures: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Restart {
    Always,
    OnFailure,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ready {
    Exec,
    Notify,
    Fd(u32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub line: usize,
    pub message: String,
}

impl Error {
    /// `FILE:LINE: message`, as compilers print it.
    pub fn at<'a>(&'a self, file: &'a str) -> impl fmt::Display + 'a {
        struct At<'a>(&'a str, &'a Error);
        impl fmt::Display for At<'_> {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "{}:{}: {}", self.0, self.1.line, self.1.message)
            }
        }
        At(file, self)
    }
}

/// Parse and validate a whole configuration: the config, or every error in line order.
pub fn compile(text: &str) -> Result<Config, Vec<Error>> {
    let mut p = Parser::default();
    for (i, raw) in text.lines().enumerate() {
        p.line(i + 1, raw);
    }
    let Parser { system, services, debug_channels, root, mounts, mut errors, broken, .. } = p;
    validate(&services, &broken, &mut errors);
    validate_storage(&root, &mounts, &services, &mut errors);
    if errors.is_empty() {
        Ok(Config { system, services, debug_channels: debug_channels.unwrap_or_default(), root, mounts })
    } else {
        errors.sort_by_key(|e| e.line);
        Err(errors)
    }
}

#[derive(PartialEq)]
enum Table {
    None,
    System,
    Debug,
    Root,
    Service,
    Mount,
    /// A table header that was refused: its keys are skipped (the header's error says why).
    Bad,
}

impl Default for Table {
    fn default() -> Self {
        Table::None
    }
}

#[derive(Default)]
struct Parser {
    system: System,
    services: Vec<Service>,
    debug_channels: Option<Vec<String>>,
    root: Root,
    mounts: Vec<Mount>,
    errors: Vec<Error>,
    table: Table,
    tables_seen: BTreeMap<String, usize>,
    keys_seen: BTreeMap<String, usize>,
    /// Services with a refused key: not checked for what is missing (its error said why).
    broken: Vec<usize>,
}

impl Parser {
    fn error(&mut self, line: usize, message: impl Into<String>) {
        if self.table == Table::Service {
            self.broken.push(self.services.len() - 1);
        }
        if self.table == Table::Mount {
            if let Some(m) = self.mounts.last_mut() {
                m.line = 0; // refused key: not checked for what is missing
            }
        }
        self.errors.push(Error { line, message: message.into() });
    }

    fn line(&mut self, line: usize, raw: &str) {
        let content = strip_comment(raw).trim();
        if content.is_empty() {
            return;
        }
        if let Some(header) = content.strip_prefix('[') {
            self.keys_seen.clear();
            self.table = Table::Bad;
            let Some(header) = header.strip_suffix(']') else { return self.error(line, "unterminated table header") };
            let header = header.trim();
            if let Some(first) = self.tables_seen.insert(header.to_string(), line) {
                let what = match (header.strip_prefix("service."), header.strip_prefix("mount.")) {
                    (Some(name), _) => format!("duplicate service {name:?}"),
                    (_, Some(name)) => format!("duplicate mount {name:?}"),
                    _ => format!("duplicate table [{header}]"),
                };
                return self.error(line, format!("{what} (first defined on line {first})"));
            }
            self.table = match header {
                "system" => Table::System,
                "debug" => Table::Debug,
                "root" => {
                    self.root.line = line;
                    Table::Root
                }
                _ if header.starts_with("mount.") => match &header[6..] {
                    name if !values::valid_service_name(name.as_bytes()) => {
                        return self.error(line, format!("bad mount name {name:?} (letters, digits, '-', '_'; at most 32)"))
                    }
                    _ if self.mounts.len() == MAX_MOUNTS => {
                        return self.error(line, format!("capacity exceeded: more than {MAX_MOUNTS} mounts"))
                    }
                    name => {
                        self.mounts.push(Mount::new(name, line));
                        Table::Mount
                    }
                },
                _ => match header.strip_prefix("service.") {
                    None => {
                        return self.error(
                            line,
                            format!("unknown table [{header}] (expected [system], [debug], [root], [service.NAME] or [mount.NAME])"),
                        )
                    }
                    Some(name) if !values::valid_service_name(name.as_bytes()) => {
                        return self.error(line, format!("bad service name {name:?} (letters, digits, '-', '_'; at most 32)"))
                    }
                    Some(_) if self.services.len() == MAX_SERVICES => {
                        return self.error(line, format!("capacity exceeded: more than {MAX_SERVICES} services"))
                    }
                    Some(name) => {
                        self.services.push(Service::new(name, line));
                        Table::Service
                    }
                },
            };
            return;
        }
        let Some((key, value)) = content.split_once('=') else { return self.error(line, "expected key = value") };
        let key = key.trim();
        if self.table == Table::None {
            return self.error(line, "key outside a table ([system], [debug], [root], [service.NAME] or [mount.NAME])");
        }
        if self.table == Table::Bad {
            return;
        }
        if let Some(first) = self.keys_seen.insert(key.to_string(), line) {
            return self.error(line, format!("duplicate key {key:?} (first on line {first})"));
        }
        let value = match parse_value(value.trim()) {
            Ok(v) => v,
            Err(m) => return self.error(line, m),
        };
        let result = match self.table {
            Table::System => set_system(&mut self.system, key, value),
            Table::Debug => match key {
                "channels" => debug_channels(value).map(|list| self.debug_channels = Some(list)),
                _ => Err(format!("unknown key {key:?} in [debug] (expected channels)")),
            },
            Table::Root => set_root(&mut self.root, key, value),
            Table::Service => match self.services.last_mut() {
                Some(service) => service.set(key, value).map_err(|m| format!("{key}: {m}")),
                None => Ok(()),
            },
            Table::Mount => match self.mounts.last_mut() {
                Some(mount) => mount.set(key, value).map_err(|m| format!("{key}: {m}")),
                None => Ok(()),
            },
            Table::None | Table::Bad => Ok(()),
        };
        if let Err(m) = result {
            self.error(line, m);
        }
    }
}

fn set_system(system: &mut System, key: &str, value: Value) -> Result<(), String> {
    let at = |m: String| format!("{key}: {m}");
    match key {
        "hostname" => {
            let name = string(value).map_err(at)?;
            if !values::valid_hostname(name.as_bytes()) {
                return Err(at(format!("{name:?} is not a host name (letters, digits, '-', '.'; at most 64)")));
            }
            system.hostname = Some(name);
        }
        "modules" => {
            let list = strings(value, MAX_MODULES).map_err(at)?;
            if let Some(bad) = list.iter().find(|m| !values::valid_module_name(m.as_bytes())) {
                return Err(at(format!("{bad:?} is not a module name")));
            }
            system.modules = list;
        }
        "shutdown_timeout" => system.shutdown_timeout_ms = seconds_ms(value).map_err(at)?,
        "sync_timeout" => system.sync_timeout_ms = seconds_ms(value).map_err(at)?,
        "panic" => {
            let v = string(value).map_err(at)?;
            system.panic = PanicPolicy::parse(v.as_bytes()).ok_or_else(|| at(format!("{v:?} is not {}", PanicPolicy::EXPECTED)))?;
        }
        "watchdog" => {
            let v = string(value).map_err(at)?;
            values::Watchdog::parse(v.as_bytes()).ok_or_else(|| at(format!("{v:?} is not {}", values::Watchdog::EXPECTED)))?;
            system.watchdog = Some(v);
        }
        "poweroff" => {
            system.poweroff_reboots = match string(value).map_err(at)?.as_str() {
                "poweroff" => false,
                "reboot" => true,
                other => return Err(at(format!("{other:?} is not poweroff or reboot"))),
            }
        }
        "coldplug" => system.coldplug = boolean(value).map_err(at)?,
        other => return Err(format!("unknown key {other:?} in [system]")),
    }
    Ok(())
}

fn debug_channels(value: Value) -> Result<Vec<String>, String> {
    let list = strings(value, MAX_CHANNELS).map_err(|m| format!("channels: {m}"))?;
    for spec in &list {
        if let Err(e) = channel::Channel::parse(spec.as_bytes()) {
            return Err(format!("channels: {spec:?}: {}", e.text()));
        }
    }
    Ok(list)
}

/// A duration in whole seconds on the kernel command line, so here too: "10s", "2m".
fn seconds_ms(v: Value) -> Result<u64, String> {
    let ms = duration_ms(v)?;
    if ms % 1000 != 0 || ms / 1000 > u32::MAX as u64 {
        return Err("a whole number of seconds, like \"10s\"".into());
    }
    Ok(ms)
}

fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '#' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

fn parse_value(v: &str) -> Result<Value, String> {
    if v == "true" || v == "false" {
        return Ok(Value::Bool(v == "true"));
    }
    if let Some(inner) = v.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or("unterminated array")?;
        let mut items = Vec::new();
        let mut rest = inner.trim();
        while !rest.is_empty() {
            let (item, after) = parse_string(rest)?;
            items.push(item);
            rest = after.trim_start();
            rest = match rest.strip_prefix(',') {
                Some(r) => r.trim_start(),
                None if rest.is_empty() => rest,
                None => return Err("expected ',' between array items".into()),
            };
        }
        return Ok(Value::List(items));
    }
    if v.starts_with('"') {
        let (s, after) = parse_string(v)?;
        if !after.trim().is_empty() {
            return Err("unexpected text after the string".into());
        }
        return Ok(Value::Str(s));
    }
    v.parse::<u64>().map(Value::Int).map_err(|_| format!("bad value {v:?} (expected \"string\", integer, true/false or [array])"))
}

/// A double-quoted string with \" \\ \n \t escapes; returns it and the rest of the input.
fn parse_string(v: &str) -> Result<(String, &str), String> {
    let body = v.strip_prefix('"').ok_or_else(|| format!("expected a \"string\", got {v:?}"))?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &body[i + 1..])),
            '\\' => match chars.next().map(|(_, e)| e) {
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                other => return Err(format!("unknown escape \\{}", other.unwrap_or(' '))),
            },
            '\0' => return Err("NUL in a string".into()),
            c => out.push(c),
        }
    }
    Err("unterminated string".into())
}

/// "100ms", "30s", "2m"; a bare integer is milliseconds.
fn duration_ms(v: Value) -> Result<u64, String> {
    let s = match v {
        Value::Int(ms) => return Ok(ms),
        Value::Str(s) => s,
        _ => return Err("expected a duration like \"100ms\" or \"30s\"".into()),
    };
    let (digits, scale) = if let Some(d) = s.strip_suffix("ms") {
        (d, 1)
    } else if let Some(d) = s.strip_suffix('s') {
        (d, 1000)
    } else if let Some(d) = s.strip_suffix('m') {
        (d, 60_000)
    } else {
        return Err(format!("bad duration {s:?} (use ms, s or m)"));
    };
    digits.parse::<u64>().ok().and_then(|n| n.checked_mul(scale)).ok_or(format!("bad duration {s:?}"))
}

impl Service {
    fn new(name: &str, line: usize) -> Service {
        Service {
            name: name.to_string(),
            line,
            argv: Vec::new(),
            env: Vec::new(),
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            tty: None,
            after: Vec::new(),
            mounts: Vec::new(),
            restart: Restart::Always,
            oneshot: false,
            ready: Ready::Exec,
            ready_timeout_ms: 10_000,
            stop_signal: 15,
            stop_grace_ms: 5_000,
            log_ring: 4096,
            echo: true,
            backoff_initial_ms: 100,
            backoff_max_ms: 30_000,
            stable_after_ms: 10_000,
            max_failures: 10,
        }
    }

    fn set(&mut self, key: &str, value: Value) -> Result<(), String> {
        match key {
            "argv" => self.argv = strings(value, MAX_ARGS)?,
            "env" => {
                self.env = strings(value, MAX_ENV)?;
                if let Some(bad) = self.env.iter().find(|e| !e.contains('=') || e.starts_with('=')) {
                    return Err(format!("{bad:?} is not KEY=value"));
                }
            }
            "cwd" => self.cwd = absolute(string(value)?)?,
            "user" => self.uid = small_int(value, u32::MAX as u64)? as u32,
            "group" => self.gid = small_int(value, u32::MAX as u64)? as u32,
            "tty" => self.tty = Some(absolute(string(value)?)?),
            "after" => self.after = strings(value, MAX_DEPS)?,
            "mounts" => self.mounts = strings(value, MAX_MOUNTS)?,
            "restart" => {
                self.restart = match string(value)?.as_str() {
                    "always" => Restart::Always,
                    "on-failure" => Restart::OnFailure,
                    "never" => Restart::Never,
                    other => return Err(format!("{other:?} is not always, on-failure or never")),
                }
            }
            "oneshot" => self.oneshot = boolean(value)?,
            "ready" => {
                let v = string(value)?;
                self.ready = match v.as_str() {
                    "exec" => Ready::Exec,
                    "notify" => Ready::Notify,
                    fd => match fd.strip_prefix("fd:").and_then(|n| n.parse::<u32>().ok()) {
                        Some(n) if (3..=9).contains(&n) => Ready::Fd(n),
                        _ => return Err(format!("{v:?} is not exec, notify or fd:N (N from 3 to 9)")),
                    },
                }
            }
            "ready_timeout" => self.ready_timeout_ms = millis_u32(value)?,
            "stop_signal" => {
                let v = string(value)?;
                self.stop_signal = values::signal_number(v.as_bytes()).ok_or(format!("unknown signal {v:?}"))?;
            }
            "stop_grace" => self.stop_grace_ms = millis_u32(value)?,
            "log_ring" => {
                let n = small_int(value, MAX_RING)?;
                if n < MIN_RING {
                    return Err(format!("at least {MIN_RING} bytes"));
                }
                self.log_ring = n;
            }
            "echo" => self.echo = boolean(value)?,
            "backoff_initial" => self.backoff_initial_ms = millis_u32(value)?,
            "backoff_max" => self.backoff_max_ms = millis_u32(value)?,
            "stable_after" => self.stable_after_ms = millis_u32(value)?,
            "max_failures" => self.max_failures = small_int(value, 1000)? as u32,
            other => return Err(format!("unknown key {other:?}")),
        }
        Ok(())
    }
}

/// A duration that fits the compiled form's 32-bit milliseconds (49 days).
fn millis_u32(v: Value) -> Result<u64, String> {
    let ms = duration_ms(v)?;
    if ms > u32::MAX as u64 {
        return Err("at most 49 days".into());
    }
    Ok(ms)
}

fn string(v: Value) -> Result<String, String> {
    match v {
        Value::Str(s) if s.len() <= MAX_STRING => Ok(s),
        Value::Str(_) => Err(format!("capacity exceeded: strings are at most {MAX_STRING} bytes")),
        _ => Err("expected a \"string\"".into()),
    }
}

fn strings(v: Value, max: usize) -> Result<Vec<String>, String> {
    match v {
        Value::List(items) if items.len() > max => Err(format!("capacity exceeded: at most {max} items")),
        Value::List(items) => items.into_iter().map(|s| string(Value::Str(s))).collect(),
        _ => Err("expected [\"an\", \"array\"]".into()),
    }
}

fn boolean(v: Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(b),
        _ => Err("expected true or false".into()),
    }
}

fn small_int(v: Value, max: u64) -> Result<u64, String> {
    match v {
        Value::Int(n) if n <= max => Ok(n),
        Value::Int(_) => Err(format!("at most {max}")),
        _ => Err("expected an integer".into()),
    }
}

fn absolute(s: String) -> Result<String, String> {
    if s.starts_with('/') { Ok(s) } else { Err(format!("{s:?} is not an absolute path")) }
}

fn validate(services: &[Service], broken: &[usize], errors: &mut Vec<Error>) {
    let mut push = |line, message| errors.push(Error { line, message });
    for (i, s) in services.iter().enumerate() {
        match s.argv.first() {
            None if broken.contains(&i) => {}
            None => push(s.line, format!("service {:?} has no argv", s.name)),
            Some(p) if !p.starts_with('/') => push(s.line, format!("service {:?}: argv[0] {p:?} is not an absolute path", s.name)),
            _ => {}
        }
        for dep in &s.after {
            if dep == &s.name {
                push(s.line, format!("service {:?} depends on itself", s.name));
            } else if !services.iter().any(|o| &o.name == dep) {
                push(s.line, format!("service {:?}: unknown dependency {dep:?}", s.name));
            }
        }
        if s.backoff_initial_ms == 0 || s.backoff_max_ms < s.backoff_initial_ms {
            push(s.line, format!("service {:?}: backoff_initial must be > 0 and <= backoff_max", s.name));
        }
    }
    let total: u64 = services.iter().map(|s| s.log_ring).sum();
    if total > MAX_RING_TOTAL {
        push(services.last().map_or(1, |s| s.line), format!("capacity exceeded: log rings total {total} bytes (at most {MAX_RING_TOTAL})"));
    }
    if let Some(cycle) = find_cycle(services) {
        let s = &services[cycle[0]];
        let path: Vec<&str> = cycle.iter().map(|&i| services[i].name.as_str()).collect();
        push(s.line, format!("dependency cycle: {} -> {}", path.join(" -> "), s.name));
    }
}

/// What `[root]` and the mounts name must exist; a mount needs a source and a target, and a
/// type unless the source is a device (whose superblock says).
fn validate_storage(root: &Root, mounts: &[Mount], services: &[Service], errors: &mut Vec<Error>) {
    let mut push = |line, message| errors.push(Error { line, message });
    for name in root.rescue.iter().flatten() {
        if !services.iter().any(|s| &s.name == name) {
            push(root.line, format!("[root] rescue: unknown service {name:?}"));
        }
    }
    // line 0: a key of this mount was refused (its error says why).
    for m in mounts.iter().filter(|m| m.line != 0) {
        if m.source.is_empty() || m.target.is_empty() {
            push(m.line, format!("mount {:?} needs a source and a target", m.name));
        } else if m.fstype.is_none() && !values::names_device(m.source.as_bytes()) {
            push(m.line, format!("mount {:?}: {:?} is not a device: give its type", m.name, m.source));
        }
    }
    for s in services {
        for name in &s.mounts {
            if !mounts.iter().any(|m| &m.name == name) {
                push(s.line, format!("service {:?}: unknown mount {name:?}", s.name));
            }
        }
    }
}

/// A dependency cycle as service indices, if there is one (depth-first search).
fn find_cycle(services: &[Service]) -> Option<Vec<usize>> {
    fn visit(i: usize, services: &[Service], state: &mut [u8], stack: &mut Vec<usize>) -> Option<Vec<usize>> {
        state[i] = 1;
        stack.push(i);
        for dep in &services[i].after {
            let Some(j) = services.iter().position(|s| &s.name == dep) else { continue };
            if state[j] == 1 {
                let start = stack.iter().position(|&k| k == j).unwrap_or(0);
                return Some(stack[start..].to_vec());
            }
            if state[j] == 0 {
                if let Some(c) = visit(j, services, state, stack) {
                    return Some(c);
                }
            }
        }
        stack.pop();
        state[i] = 2;
        None
    }
    let mut state = vec![0u8; services.len()];
    (0..services.len()).find_map(|i| if state[i] == 0 { visit(i, services, &mut state, &mut Vec::new()) } else { None })
}

