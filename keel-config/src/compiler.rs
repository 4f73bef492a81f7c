//! The service configuration compiler, run by keel's build.rs (and by the tests) on the
//! host: a small TOML subset in, validated static Rust tables out. Not part of PID 1.
//! Every error names the line.
//!
//! Format: `[service.NAME]` tables with `key = value` lines; values are "strings",
//! integers, true/false, ["arrays", "of", "strings"] and durations ("100ms", "30s").

use crate::channel;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Capacities of the PID 1 tables; exceeding one is a build error.
pub const MAX_SERVICES: usize = 128;
pub const MAX_ARGS: usize = 16;
pub const MAX_ENV: usize = 16;
pub const MAX_DEPS: usize = 8;
pub const MAX_STRING: usize = 255;
pub const MIN_RING: u64 = 256;
pub const MAX_RING: u64 = 65536;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(u64),
    Bool(bool),
    List(Vec<String>),
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

#[derive(Debug, PartialEq)]
pub struct Error {
    pub line: usize,
    pub message: String,
}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, Error> {
    Err(Error { line, message: message.into() })
}

/// Parse and validate a whole configuration.
pub fn parse(text: &str) -> Result<Vec<Service>, Error> {
    parse_all(text).map(|c| c.services)
}

/// A whole configuration: the services and the debug channels.
#[derive(Debug, Default)]
pub struct Config {
    pub services: Vec<Service>,
    /// `[debug] channels = ["ttyS1:rw", "vsock:1024:ro"]` (docs/protocol.md).
    pub debug_channels: Vec<String>,
}

pub fn parse_all(text: &str) -> Result<Config, Error> {
    let mut debug_channels = None;
    let mut in_debug = false;
    let mut services: Vec<Service> = Vec::new();
    let mut keys_seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = strip_comment(raw).trim();
        if content.is_empty() {
            continue;
        }
        if let Some(header) = content.strip_prefix('[') {
            let Some(header) = header.strip_suffix(']') else { return err(line, "unterminated table header") };
            keys_seen.clear();
            in_debug = header.trim() == "debug";
            if in_debug {
                continue;
            }
            let Some(name) = header.trim().strip_prefix("service.") else {
                return err(line, format!("unknown table [{header}] (expected [service.NAME] or [debug])"));
            };
            if !valid_name(name) {
                return err(line, format!("bad service name {name:?} (letters, digits, '-', '_'; at most 32)"));
            }
            if let Some(first) = services.iter().find(|s| s.name == name) {
                return err(line, format!("duplicate service {name:?} (first defined on line {})", first.line));
            }
            if services.len() == MAX_SERVICES {
                return err(line, format!("capacity exceeded: more than {MAX_SERVICES} services"));
            }
            services.push(Service::new(name, line));
            keys_seen.clear();
            continue;
        }
        let Some((key, value)) = content.split_once('=') else { return err(line, "expected key = value") };
        let key = key.trim();
        if !in_debug && services.is_empty() {
            return err(line, "key outside a [service.NAME] table");
        }
        if let Some(first) = keys_seen.insert(key.to_string(), line) {
            return err(line, format!("duplicate key {key:?} (first on line {first})"));
        }
        let value = parse_value(value.trim()).map_err(|m| Error { line, message: m })?;
        if in_debug {
            if key != "channels" {
                return err(line, format!("unknown key {key:?} in [debug] (expected channels)"));
            }
            let list = strings(value, 4).map_err(|m| Error { line, message: format!("channels: {m}") })?;
            for spec in &list {
                if let Err(e) = channel::Channel::parse(spec.as_bytes()) {
                    return err(line, format!("channels: {spec:?}: {}", e.text()));
                }
            }
            debug_channels = Some(list);
            continue;
        }
        let service = services.last_mut().expect("checked above");
        service.set(key, value).map_err(|m| Error { line, message: format!("{key}: {m}") })?;
    }
    validate(&services)?;
    Ok(Config { services, debug_channels: debug_channels.unwrap_or_default() })
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

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 32 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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

pub fn signal_number(name: &str) -> Option<u32> {
    let name = name.strip_prefix("SIG").unwrap_or(name);
    Some(match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "KILL" => 9,
        "USR1" => 10,
        "USR2" => 12,
        "TERM" => 15,
        "CONT" => 18,
        "STOP" => 19,
        "WINCH" => 28,
        "PWR" => 30,
        _ => return None,
    })
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
            "ready_timeout" => self.ready_timeout_ms = duration_ms(value)?,
            "stop_signal" => {
                let v = string(value)?;
                self.stop_signal = signal_number(&v).ok_or(format!("unknown signal {v:?}"))?;
            }
            "stop_grace" => self.stop_grace_ms = duration_ms(value)?,
            "log_ring" => {
                let n = small_int(value, MAX_RING)?;
                if n < MIN_RING {
                    return Err(format!("at least {MIN_RING} bytes"));
                }
                self.log_ring = n;
            }
            "echo" => self.echo = boolean(value)?,
            "backoff_initial" => self.backoff_initial_ms = duration_ms(value)?,
            "backoff_max" => self.backoff_max_ms = duration_ms(value)?,
            "stable_after" => self.stable_after_ms = duration_ms(value)?,
            "max_failures" => self.max_failures = small_int(value, 1000)? as u32,
            other => return Err(format!("unknown key {other:?}")),
        }
        Ok(())
    }
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

fn validate(services: &[Service]) -> Result<(), Error> {
    for s in services {
        match s.argv.first() {
            None => return err(s.line, format!("service {:?} has no argv", s.name)),
            Some(p) if !p.starts_with('/') => {
                return err(s.line, format!("service {:?}: argv[0] {p:?} is not an absolute path", s.name))
            }
            _ => {}
        }
        for dep in &s.after {
            if dep == &s.name {
                return err(s.line, format!("service {:?} depends on itself", s.name));
            }
            if !services.iter().any(|o| &o.name == dep) {
                return err(s.line, format!("service {:?}: unknown dependency {dep:?}", s.name));
            }
        }
        if s.backoff_initial_ms == 0 || s.backoff_max_ms < s.backoff_initial_ms {
            return err(s.line, format!("service {:?}: backoff_initial must be > 0 and <= backoff_max", s.name));
        }
    }
    if let Some(cycle) = find_cycle(services) {
        let s = &services[cycle[0]];
        let path: Vec<&str> = cycle.iter().map(|&i| services[i].name.as_str()).collect();
        return err(s.line, format!("dependency cycle: {} -> {}", path.join(" -> "), s.name));
    }
    Ok(())
}

/// A dependency cycle as service indices, if there is one (depth-first search).
fn find_cycle(services: &[Service]) -> Option<Vec<usize>> {
    fn visit(i: usize, services: &[Service], state: &mut [u8], stack: &mut Vec<usize>) -> Option<Vec<usize>> {
        state[i] = 1;
        stack.push(i);
        for dep in &services[i].after {
            let j = services.iter().position(|s| &s.name == dep)?;
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

/// The Rust source of the static tables (see keel_config::spec for the types).
pub fn generate(config: &Config) -> String {
    let services = &config.services;
    let mut out = String::new();
    let channels: Vec<String> = config.debug_channels.iter().map(|c| format!("b{c:?}")).collect();
    writeln!(out, "/// Debug channels from the configuration (`keel.debug=` replaces them).").unwrap();
    writeln!(out, "pub static DEBUG_CHANNELS: &[&[u8]] = &[{}];", channels.join(", ")).unwrap();
    let index = |name: &str| services.iter().position(|s| s.name == name).unwrap();
    writeln!(out, "/// How many services the table has.\npub const SERVICE_COUNT: usize = {};", services.len()).unwrap();
    writeln!(out, "pub static SERVICES: [Spec<'static>; SERVICE_COUNT] = [").unwrap();
    for s in services {
        // Packed C strings: each item and its NUL, as a byte string literal.
        let packed = |v: &[String]| {
            let mut bytes = Vec::new();
            for a in v {
                bytes.extend_from_slice(a.as_bytes());
                bytes.push(0);
            }
            format!("CStrs::new(b\"{}\").unwrap()", bytes.iter().map(|b| format!("\\x{b:02x}")).collect::<String>())
        };
        let deps = s.after.iter().map(|d| index(d).to_string()).collect::<Vec<_>>().join(", ");
        let restart = match s.restart {
            Restart::Always => "Restart::Always",
            Restart::OnFailure => "Restart::OnFailure",
            Restart::Never => "Restart::Never",
        };
        let ready = match s.ready {
            Ready::Exec => "Readiness::Exec".to_string(),
            Ready::Notify => "Readiness::Notify".to_string(),
            Ready::Fd(n) => format!("Readiness::Fd({n})"),
        };
        let tty = s.tty.as_ref().map_or("None".to_string(), |t| format!("Some(c{t:?})"));
        writeln!(
            out,
            "    Spec {{ name: {:?}, argv: {}, env: {}, cwd: c{:?}, uid: {}, gid: {}, tty: {tty}, \
             deps: &[{deps}], restart: {restart}, oneshot: {}, ready: {ready}, ready_timeout_ms: {}, \
             stop_signal: {}, stop_grace_ms: {}, ring: {}, echo: {}, backoff_initial_ms: {}, \
             backoff_max_ms: {}, stable_after_ms: {}, max_failures: {} }},",
            s.name,
            packed(&s.argv),
            packed(&s.env),
            s.cwd,
            s.uid,
            s.gid,
            s.oneshot,
            s.ready_timeout_ms,
            s.stop_signal,
            s.stop_grace_ms,
            s.log_ring,
            s.echo,
            s.backoff_initial_ms,
            s.backoff_max_ms,
            s.stable_after_ms,
            s.max_failures,
        )
        .unwrap();
    }
    writeln!(out, "];").unwrap();
    let total: u64 = services.iter().map(|s| s.log_ring).sum();
    writeln!(out, "/// Bytes of all log rings together.\npub const RING_TOTAL: usize = {total};").unwrap();
    out
}
