//! What keelctl prints: human-readable lines, or one JSON object per line (`--json`). Pure
//! functions from message fields to strings; the caller writes them.

use keel_proto::{ErrorCode, EventKind, LogSource, ServiceState, Stream};
use std::fmt::Write as _;

const NS_PER_SEC: u64 = 1_000_000_000;

/// `bytes` as a JSON string, quotes included. Bytes that are not UTF-8 become U+FFFD.
pub fn json_str(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON value for `object`.
pub enum Json<'a> {
    Str(&'a [u8]),
    Num(u64),
    Int(i64),
    Float(f64),
}

/// `{"k":v,...}` in the order given.
pub fn object(fields: &[(&str, Json)]) -> String {
    let mut out = String::from("{");
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_str(key.as_bytes()));
        out.push(':');
        match value {
            Json::Str(s) => out.push_str(&json_str(s)),
            Json::Num(n) => {
                let _ = write!(out, "{n}");
            }
            Json::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Json::Float(x) => {
                let _ = write!(out, "{x}");
            }
        }
    }
    out.push('}');
    out
}

/// Text from the other side made safe for a terminal: the trailing line end dropped,
/// control characters other than tab shown as `\xNN`, bytes that are not UTF-8 as U+FFFD.
pub fn clean(bytes: &[u8]) -> String {
    let mut end = bytes.len();
    while end > 0 && matches!(bytes[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    let mut out = String::new();
    for c in String::from_utf8_lossy(&bytes[..end]).chars() {
        if c != '\t' && (c.is_control()) {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// `[    1.234567]` as the kernel and keel stamp their console lines.
pub fn stamp(boot_ns: u64) -> String {
    format!("[{:5}.{:06}]", boot_ns / NS_PER_SEC, boot_ns % NS_PER_SEC / 1000)
}

/// Seconds with millisecond precision: `12.345 s`.
pub fn seconds(ns: u64) -> String {
    format!("{}.{:03} s", ns / NS_PER_SEC, ns % NS_PER_SEC / 1_000_000)
}

pub fn source_name(s: LogSource) -> String {
    match s {
        LogSource::Keel => "keel".into(),
        LogSource::Kernel => "kernel".into(),
        LogSource::Service => "service".into(),
        LogSource::Unknown(n) => format!("source{n}"),
    }
}

pub fn stream_name(s: Stream) -> String {
    match s {
        Stream::Out => "stdout".into(),
        Stream::Err => "stderr".into(),
        Stream::Unknown(n) => format!("stream{n}"),
    }
}

pub fn event_kind_name(k: EventKind) -> String {
    match k {
        EventKind::ServiceState => "service".into(),
        EventKind::BootPhase => "boot".into(),
        EventKind::PowerRequest => "power".into(),
        EventKind::Unknown(n) => format!("kind{n}"),
    }
}

/// A service state's name as keel logs it (keel_proto::ServiceState), `stateN` if unknown.
pub fn state_name(state: ServiceState) -> String {
    state.name().map_or_else(|| format!("state{}", u8::from(state)), str::to_string)
}

pub fn error_code_name(code: ErrorCode) -> String {
    match code {
        ErrorCode::UnknownType => "unknown_type".into(),
        ErrorCode::Malformed => "malformed".into(),
        ErrorCode::Denied => "denied".into(),
        ErrorCode::NoSuchService => "no_such_service".into(),
        ErrorCode::Busy => "busy".into(),
        ErrorCode::Unsupported => "unsupported".into(),
        ErrorCode::Evicted => "evicted".into(),
        ErrorCode::Unknown(n) => format!("error{n}"),
    }
}

/// One log record, a Log message's fields.
pub struct LogRecord<'a> {
    pub boot_ns: u64,
    pub source: LogSource,
    pub stream: Stream,
    pub service: &'a [u8],
    pub text: &'a [u8],
}

/// `[    1.234567] keel: text`, `[    1.234567] text` for the kernel, `[    1.234567] sshd| text`
/// for a service: the lines keel writes to the console.
pub fn log_line(r: &LogRecord) -> String {
    let prefix = match r.source {
        LogSource::Kernel => String::new(),
        LogSource::Keel => "keel: ".into(),
        LogSource::Service => format!("{}| ", clean(r.service)),
        other => format!("{}: ", source_name(other)),
    };
    format!("{} {prefix}{}", stamp(r.boot_ns), clean(r.text))
}

pub fn log_json(r: &LogRecord) -> String {
    let mut text = r.text;
    while let [rest @ .., b'\n' | b'\r'] = text {
        text = rest;
    }
    object(&[
        ("type", Json::Str(b"log")),
        ("boot_ns", Json::Num(r.boot_ns)),
        ("source", Json::Str(source_name(r.source).as_bytes())),
        ("stream", Json::Str(stream_name(r.stream).as_bytes())),
        ("service", Json::Str(r.service)),
        ("text", Json::Str(text)),
    ])
}

pub struct EventRecord<'a> {
    pub boot_ns: u64,
    pub event_seq: u32,
    pub kind: EventKind,
    pub name: &'a [u8],
    pub detail: &'a [u8],
}

/// `[    2.000000] #42 service sshd: running` (no `: ` when there is no detail).
pub fn event_line(e: &EventRecord) -> String {
    let mut line = format!("{} #{} {} {}", stamp(e.boot_ns), e.event_seq, event_kind_name(e.kind), clean(e.name));
    if !e.detail.is_empty() {
        let _ = write!(line, ": {}", clean(e.detail));
    }
    line
}

pub fn event_json(e: &EventRecord) -> String {
    object(&[
        ("type", Json::Str(b"event")),
        ("boot_ns", Json::Num(e.boot_ns)),
        ("event_seq", Json::Num(e.event_seq.into())),
        ("kind", Json::Str(event_kind_name(e.kind).as_bytes())),
        ("name", Json::Str(e.name)),
        ("detail", Json::Str(e.detail)),
    ])
}

pub struct StatusInfo<'a> {
    pub version: &'a [u8],
    pub uptime_ns: u64,
    pub ready_ns: u64,
    pub rss_kib: u32,
    pub services: u16,
    pub failed: u16,
}

/// Aligned `key: value` lines, each ending in a newline.
pub fn status_lines(s: &StatusInfo) -> String {
    let ready = if s.ready_ns == 0 { "not yet".to_string() } else { seconds(s.ready_ns) };
    let rows = [
        ("version", clean(s.version)),
        ("uptime", seconds(s.uptime_ns)),
        ("ready", ready),
        ("rss", format!("{} KiB", s.rss_kib)),
        ("services", s.services.to_string()),
        ("failed", s.failed.to_string()),
    ];
    rows.iter().map(|(k, v)| format!("{:<10}{v}\n", format!("{k}:"))).collect()
}

pub fn status_json(s: &StatusInfo) -> String {
    object(&[
        ("type", Json::Str(b"status")),
        ("version", Json::Str(s.version)),
        ("uptime_ns", Json::Num(s.uptime_ns)),
        ("ready_ns", Json::Num(s.ready_ns)),
        ("rss_kib", Json::Num(s.rss_kib.into())),
        ("services", Json::Num(s.services.into())),
        ("failed", Json::Num(s.failed.into())),
    ])
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRow {
    pub name: Vec<u8>,
    pub state: ServiceState,
    pub pid: i32,
    pub restarts: u32,
}

/// The table `NAME STATE PID RESTARTS`, columns as wide as their widest cell; `-` for no pid.
pub fn services_table(rows: &[ServiceRow]) -> String {
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            let pid = if r.pid == 0 { "-".to_string() } else { r.pid.to_string() };
            [clean(&r.name), state_name(r.state), pid, r.restarts.to_string()]
        })
        .collect();
    let header = ["NAME", "STATE", "PID", "RESTARTS"].map(String::from);
    let mut width = [0usize; 4];
    for row in std::iter::once(&header).chain(&cells) {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&cells) {
        let _ = writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2],
            w3 = width[3]
        );
    }
    out
}

pub fn service_json(r: &ServiceRow) -> String {
    object(&[
        ("type", Json::Str(b"service")),
        ("name", Json::Str(&r.name)),
        ("state", Json::Str(state_name(r.state).as_bytes())),
        ("pid", Json::Int(r.pid.into())),
        ("restarts", Json::Num(r.restarts.into())),
    ])
}

/// A line of console text (shared line) in JSON form.
pub fn text_json(line: &[u8]) -> String {
    object(&[("type", Json::Str(b"text")), ("text", Json::Str(line))])
}

/// Round-trip time in milliseconds, to the microsecond.
pub fn rtt_ms(rtt: std::time::Duration) -> f64 {
    (rtt.as_micros() as f64) / 1000.0
}

pub fn pong_line(version: &[u8], rtt: std::time::Duration) -> String {
    format!("pong from keel {}: time={:.3} ms", clean(version), rtt_ms(rtt))
}

pub fn pong_json(version: &[u8], rtt: std::time::Duration) -> String {
    object(&[("type", Json::Str(b"pong")), ("version", Json::Str(version)), ("rtt_ms", Json::Float(rtt_ms(rtt)))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn json_escaping() {
        assert_eq!(json_str(b""), r#""""#);
        assert_eq!(json_str(b"plain text"), r#""plain text""#);
        assert_eq!(json_str(b"a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(json_str(b"1\n2\r3\t4\x085\x0c6"), r#""1\n2\r3\t4\b5\f6""#);
        assert_eq!(json_str(b"\x00\x1b[0m\x1f\x7f"), "\"\\u0000\\u001b[0m\\u001f\x7f\"");
        assert_eq!(json_str("héllo ✓".as_bytes()), "\"héllo ✓\"");
        assert_eq!(json_str(b"bad \xff byte"), "\"bad \u{fffd} byte\"");
        // `/` needs no escape, `</` neither.
        assert_eq!(json_str(b"</a>"), r#""</a>""#);
    }

    #[test]
    fn json_objects() {
        assert_eq!(object(&[]), "{}");
        assert_eq!(
            object(&[
                ("s", Json::Str(b"x\"")),
                ("n", Json::Num(u64::MAX)),
                ("i", Json::Int(-5)),
                ("f", Json::Float(0.25))
            ]),
            r#"{"s":"x\"","n":18446744073709551615,"i":-5,"f":0.25}"#
        );
    }

    #[test]
    fn stamps_and_seconds() {
        assert_eq!(stamp(1_234_567_891), "[    1.234567]");
        assert_eq!(stamp(0), "[    0.000000]");
        assert_eq!(stamp(123_456 * NS_PER_SEC + 5_000), "[123456.000005]");
        assert_eq!(seconds(12_345_678_901), "12.345 s");
        assert_eq!(seconds(512_000_000), "0.512 s");
        assert_eq!(seconds(999_999), "0.000 s");
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean(b"listening\n"), "listening");
        assert_eq!(clean(b"crlf\r\n\r\n"), "crlf");
        assert_eq!(clean(b"a\tb"), "a\tb");
        assert_eq!(clean(b"\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
        assert_eq!(clean(b"two\nlines\n"), "two\\x0alines");
        assert_eq!(clean(b"\xfe"), "\u{fffd}");
    }

    fn rec<'a>(source: LogSource, service: &'a [u8], text: &'a [u8]) -> LogRecord<'a> {
        LogRecord { boot_ns: 1_234_567_891, source, stream: Stream::Err, service, text }
    }

    #[test]
    fn log_lines() {
        assert_eq!(log_line(&rec(LogSource::Service, b"sshd", b"listening\n")), "[    1.234567] sshd| listening");
        assert_eq!(log_line(&rec(LogSource::Keel, b"", b"ready")), "[    1.234567] keel: ready");
        assert_eq!(log_line(&rec(LogSource::Kernel, b"", b"Linux version 6.1")), "[    1.234567] Linux version 6.1");
        assert_eq!(log_line(&rec(LogSource::Unknown(9), b"", b"x")), "[    1.234567] source9: x");
        assert_eq!(
            log_json(&rec(LogSource::Service, b"sshd", b"say \"hi\"\n")),
            r#"{"type":"log","boot_ns":1234567891,"source":"service","stream":"stderr","service":"sshd","text":"say \"hi\""}"#
        );
        assert_eq!(
            log_json(&LogRecord {
                boot_ns: 5,
                source: LogSource::Kernel,
                stream: Stream::Out,
                service: b"",
                text: b"\x1b"
            }),
            r#"{"type":"log","boot_ns":5,"source":"kernel","stream":"stdout","service":"","text":"\u001b"}"#
        );
    }

    #[test]
    fn event_lines() {
        let e = EventRecord {
            boot_ns: 2_000_000_000,
            event_seq: 42,
            kind: EventKind::ServiceState,
            name: b"sshd",
            detail: b"running",
        };
        assert_eq!(event_line(&e), "[    2.000000] #42 service sshd: running");
        assert_eq!(
            event_json(&e),
            r#"{"type":"event","boot_ns":2000000000,"event_seq":42,"kind":"service","name":"sshd","detail":"running"}"#
        );
        let e = EventRecord { boot_ns: 0, event_seq: 0, kind: EventKind::BootPhase, name: b"mount /proc", detail: b"" };
        assert_eq!(event_line(&e), "[    0.000000] #0 boot mount /proc");
        let e = EventRecord { kind: EventKind::Unknown(7), ..e };
        assert_eq!(event_line(&e), "[    0.000000] #0 kind7 mount /proc");
    }

    #[test]
    fn status() {
        let s = StatusInfo {
            version: b"0.1.0",
            uptime_ns: 12_345_678_901,
            ready_ns: 512_000_000,
            rss_kib: 1234,
            services: 5,
            failed: 1,
        };
        assert_eq!(
            status_lines(&s),
            "version:  0.1.0\nuptime:   12.345 s\nready:    0.512 s\nrss:      1234 KiB\nservices: 5\nfailed:   1\n"
        );
        assert_eq!(
            status_json(&s),
            r#"{"type":"status","version":"0.1.0","uptime_ns":12345678901,"ready_ns":512000000,"rss_kib":1234,"services":5,"failed":1}"#
        );
        let s = StatusInfo { ready_ns: 0, ..s };
        assert!(status_lines(&s).contains("\nready:    not yet\n"));
    }

    #[test]
    fn services() {
        let rows = vec![
            ServiceRow { name: b"sshd".to_vec(), state: ServiceState::from(2), pid: 317, restarts: 1 },
            ServiceRow { name: b"console-shell".to_vec(), state: ServiceState::from(6), pid: 0, restarts: 12 },
            ServiceRow { name: b"x".to_vec(), state: ServiceState::from(200), pid: 5, restarts: 0 },
        ];
        assert_eq!(
            services_table(&rows),
            "\
NAME           STATE     PID  RESTARTS
sshd           ready     317         1
console-shell  backoff     -        12
x              state200    5         0
"
        );
        assert_eq!(services_table(&[]), "NAME  STATE  PID  RESTARTS\n");
        assert_eq!(
            service_json(&rows[0]),
            r#"{"type":"service","name":"sshd","state":"ready","pid":317,"restarts":1}"#
        );
        assert_eq!(
            service_json(&ServiceRow { name: b"a\"b".to_vec(), state: ServiceState::from(8), pid: -1, restarts: 0 }),
            r#"{"type":"service","name":"a\"b","state":"off","pid":-1,"restarts":0}"#
        );
    }

    #[test]
    fn names() {
        let all: Vec<String> = (0..10u8).map(|c| state_name(c.into())).collect();
        assert_eq!(
            all,
            ["waiting", "starting", "ready", "stopping", "stopped", "exited", "backoff", "failed", "off", "state9"]
        );
        assert_eq!(error_code_name(ErrorCode::Denied), "denied");
        assert_eq!(error_code_name(ErrorCode::NoSuchService), "no_such_service");
        assert_eq!(error_code_name(ErrorCode::from(77)), "error77");
        assert_eq!(stream_name(Stream::from(3)), "stream3");
    }

    #[test]
    fn pong() {
        let rtt = Duration::from_micros(1234);
        assert_eq!(pong_line(b"0.1.0", rtt), "pong from keel 0.1.0: time=1.234 ms");
        assert_eq!(pong_json(b"0.1.0", rtt), r#"{"type":"pong","version":"0.1.0","rtt_ms":1.234}"#);
        assert_eq!(text_json(b"[ 0.1] hi"), r#"{"type":"text","text":"[ 0.1] hi"}"#);
    }
}
