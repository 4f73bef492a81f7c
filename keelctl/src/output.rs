//! What keelctl prints: human-readable lines, or one JSON object per line (`--json`). Pure
//! functions from message fields to strings; the caller writes them.

use keel_proto::{ErrorCode, EventKind, LogSource, ServiceState, Stream};
use serde::Serialize;
use std::borrow::Cow;
use std::fmt::Write as _;

const NS_PER_SEC: u64 = 1_000_000_000;

/// One line of `--json` output: `{"type":"status",...}`, the fields in this order
/// (serde_json: strings escaped as JSON requires, a float that is not finite as `null`).
#[derive(Serialize, Debug, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum JsonLine<'a> {
    Status {
        version: Cow<'a, str>,
        uptime_ns: u64,
        ready_ns: u64,
        rss_kib: u32,
        services: u16,
        failed: u16,
        config: Cow<'a, str>,
    },
    Service {
        name: Cow<'a, str>,
        state: Cow<'a, str>,
        pid: i32,
        restarts: u32,
    },
    Log {
        boot_ns: u64,
        source: Cow<'a, str>,
        stream: Cow<'a, str>,
        service: Cow<'a, str>,
        text: Cow<'a, str>,
    },
    Event {
        boot_ns: u64,
        event_seq: u32,
        kind: Cow<'a, str>,
        name: Cow<'a, str>,
        detail: Cow<'a, str>,
    },
    /// A line of console text on a shared line.
    Text {
        text: Cow<'a, str>,
    },
    Pong {
        version: Cow<'a, str>,
        rtt_ms: f64,
    },
    /// start, stop, restart and power accepted.
    Ok,
}

impl JsonLine<'_> {
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("strings, integers and floats always serialize")
    }
}

/// Bytes from the other side as a string: bytes that are not UTF-8 become U+FFFD.
fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
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

// keel-proto names ServiceState and PowerCmd (what PID 1 itself logs); the names of
// the other wire enums are the client's own, for its output.

pub fn source_name(s: LogSource) -> Cow<'static, str> {
    match s {
        LogSource::Keel => "keel".into(),
        LogSource::Kernel => "kernel".into(),
        LogSource::Service => "service".into(),
        LogSource::Unknown(n) => format!("source{n}").into(),
    }
}

pub fn stream_name(s: Stream) -> Cow<'static, str> {
    match s {
        Stream::Out => "stdout".into(),
        Stream::Err => "stderr".into(),
        Stream::Unknown(n) => format!("stream{n}").into(),
    }
}

pub fn event_kind_name(k: EventKind) -> Cow<'static, str> {
    match k {
        EventKind::ServiceState => "service".into(),
        EventKind::BootPhase => "boot".into(),
        EventKind::PowerRequest => "power".into(),
        EventKind::Config => "config".into(),
        EventKind::PreviousBoot => "previous".into(),
        EventKind::Unknown(n) => format!("kind{n}").into(),
    }
}

/// A service state's name as keel logs it (`ServiceState::name`), `stateN` if unknown.
pub fn state_name(state: ServiceState) -> Cow<'static, str> {
    state.name().map_or_else(|| format!("state{}", u8::from(state)).into(), Cow::Borrowed)
}

pub fn error_code_name(code: ErrorCode) -> Cow<'static, str> {
    match code {
        ErrorCode::UnknownType => "unknown_type".into(),
        ErrorCode::Malformed => "malformed".into(),
        ErrorCode::Denied => "denied".into(),
        ErrorCode::NoSuchService => "no_such_service".into(),
        ErrorCode::Busy => "busy".into(),
        ErrorCode::Unsupported => "unsupported".into(),
        ErrorCode::Evicted => "evicted".into(),
        ErrorCode::Unknown(n) => format!("error{n}").into(),
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
    JsonLine::Log {
        boot_ns: r.boot_ns,
        source: source_name(r.source),
        stream: stream_name(r.stream),
        service: lossy(r.service),
        text: lossy(text),
    }
    .to_line()
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

/// The PreviousBoot event that starts a `--previous` answer: `previous boot ended: kernel
/// panic (Panic dump)`.
pub fn previous_line(e: &EventRecord) -> String {
    let mut line = format!("previous boot ended: {}", clean(e.name));
    if !e.detail.is_empty() {
        let _ = write!(line, " ({})", clean(e.detail));
    }
    line
}

pub fn event_json(e: &EventRecord) -> String {
    JsonLine::Event {
        boot_ns: e.boot_ns,
        event_seq: e.event_seq,
        kind: event_kind_name(e.kind),
        name: lossy(e.name),
        detail: lossy(e.detail),
    }
    .to_line()
}

pub struct StatusInfo<'a> {
    pub version: &'a [u8],
    pub uptime_ns: u64,
    pub ready_ns: u64,
    pub rss_kib: u32,
    pub services: u16,
    pub failed: u16,
    /// The configuration that runs (empty from an older keel).
    pub config: &'a [u8],
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
        ("config", if s.config.is_empty() { "?".to_string() } else { clean(s.config) }),
    ];
    rows.iter().map(|(k, v)| format!("{:<10}{v}\n", format!("{k}:"))).collect()
}

pub fn status_json(s: &StatusInfo) -> String {
    JsonLine::Status {
        version: lossy(s.version),
        uptime_ns: s.uptime_ns,
        ready_ns: s.ready_ns,
        rss_kib: s.rss_kib,
        services: s.services,
        failed: s.failed,
        config: lossy(s.config),
    }
    .to_line()
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
            [clean(&r.name), state_name(r.state).into_owned(), pid, r.restarts.to_string()]
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
    JsonLine::Service { name: lossy(&r.name), state: state_name(r.state), pid: r.pid, restarts: r.restarts }.to_line()
}

/// A line of console text (shared line) in JSON form.
pub fn text_json(line: &[u8]) -> String {
    JsonLine::Text { text: lossy(line) }.to_line()
}

/// Round-trip time in milliseconds, to the microsecond.
pub fn rtt_ms(rtt: std::time::Duration) -> f64 {
    (rtt.as_micros() as f64) / 1000.0
}

pub fn pong_line(version: &[u8], rtt: std::time::Duration) -> String {
    format!("pong from keel {}: time={:.3} ms", clean(version), rtt_ms(rtt))
}

pub fn pong_json(version: &[u8], rtt: std::time::Duration) -> String {
    JsonLine::Pong { version: lossy(version), rtt_ms: rtt_ms(rtt) }.to_line()
}

pub fn ok_json() -> String {
    JsonLine::Ok.to_line()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A text line's JSON, to see how a string comes out.
    fn json_str(bytes: &[u8]) -> String {
        let line = text_json(bytes);
        let inner = line.strip_prefix(r#"{"type":"text","text":"#).and_then(|l| l.strip_suffix('}'));
        inner.unwrap_or_else(|| panic!("{line}")).to_string()
    }

    #[test]
    fn json_escaping() {
        // The escapes the hand-written encoder used to make; serde_json makes the same.
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
    fn json_lines() {
        assert_eq!(ok_json(), r#"{"type":"ok"}"#);
        // Extreme integers as they are; a float that is not finite is no JSON number.
        let status = JsonLine::Status {
            version: "v".into(),
            uptime_ns: u64::MAX,
            ready_ns: 0,
            rss_kib: u32::MAX,
            services: u16::MAX,
            failed: 0,
            config: "/etc/keel/keel.db".into(),
        };
        assert_eq!(
            status.to_line(),
            r#"{"type":"status","version":"v","uptime_ns":18446744073709551615,"ready_ns":0,"rss_kib":4294967295,"services":65535,"failed":0,"config":"/etc/keel/keel.db"}"#
        );
        for x in [f64::NAN, f64::INFINITY] {
            let pong = JsonLine::Pong { version: "v".into(), rtt_ms: x };
            assert_eq!(pong.to_line(), r#"{"type":"pong","version":"v","rtt_ms":null}"#);
        }
        let row = ServiceRow { name: b"s".to_vec(), state: ServiceState::Ready, pid: i32::MIN, restarts: 0 };
        assert_eq!(
            service_json(&row),
            r#"{"type":"service","name":"s","state":"ready","pid":-2147483648,"restarts":0}"#
        );
        // Every line parses back as JSON with its type first.
        let rtt = Duration::from_micros(u64::MAX / 1000);
        let back: serde_json::Value = serde_json::from_str(&pong_json(b"\xff", rtt)).unwrap();
        assert_eq!(back["type"], "pong");
        assert!(back["rtt_ms"].is_f64(), "{back}");
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
            config: b"built-in",
        };
        assert_eq!(
            status_lines(&s),
            "version:  0.1.0\nuptime:   12.345 s\nready:    0.512 s\nrss:      1234 KiB\nservices: 5\nfailed:   1\nconfig:   built-in\n"
        );
        assert_eq!(
            status_json(&s),
            r#"{"type":"status","version":"0.1.0","uptime_ns":12345678901,"ready_ns":512000000,"rss_kib":1234,"services":5,"failed":1,"config":"built-in"}"#
        );
        assert!(status_lines(&StatusInfo { config: b"", ..s }).ends_with("config:   ?\n"), "an older keel");
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
        let all: Vec<_> = (0..10u8).map(|c| state_name(c.into())).collect();
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
