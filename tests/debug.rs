//! The debug protocol end to end: keel as PID 1 of a PID namespace serving unix sockets,
//! keelctl on the host side.
mod common;

use common::ns::{Pid1, SIGINT};
use keel_proto::{BinaryDeframer, ErrorCode, Message, ReplyBody, MAX_BODY};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SECOND: Duration = Duration::from_secs(1);

struct Setup {
    ns: Pid1,
    rw: String,
    ro: String,
    /// Dropped after `ns`: keel's sockets go with it, whatever the test did.
    _dir: TempDir,
}

/// A directory of its own under the temp dir, removed when dropped (a failing test too).
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let id = format!("{}-{:?}", std::process::id(), std::thread::current().id()).replace(['(', ')'], "");
        let dir = std::env::temp_dir().join(format!("keel-debug-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// keel with the test service table, only `side` and `ticker` running, a read-write and a
/// read-only unix channel.
fn start() -> Setup {
    start_with(&[])
}

fn start_with(more: &[&str]) -> Setup {
    let dir = TempDir::new();
    let rw = dir.0.join("rw.sock").display().to_string();
    let ro = dir.0.join("ro.sock").display().to_string();
    let mut args: Vec<String> = service_names()
        .into_iter()
        .filter(|name| name != "side" && name != "ticker" && !more.contains(&name.as_str()))
        .map(|name| format!("keel.svc.{name}=off"))
        .collect();
    args.push(format!("keel.debug=unix:{rw},unix:{ro}:ro"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut ns = Pid1::start(&common::keel_services_bin(), &args);
    ns.wait_for("svc ticker: waiting -> ready", 5 * SECOND);
    Setup { ns, rw, ro, _dir: dir }
}

/// The services of tests/services/services.toml, in table order.
fn service_names() -> Vec<String> {
    let config = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/services/services.toml")).unwrap();
    config.lines().filter_map(|l| l.trim().strip_prefix("[service.")?.strip_suffix(']').map(str::to_string)).collect()
}

fn keelctl(socket: &str, args: &[&str]) -> Output {
    let out = Command::new(common::keelctl_bin())
        .args(["--unix", socket, "--timeout", "5"])
        .args(args)
        .output()
        .expect("keelctl runs");
    out
}

fn text(out: &Output) -> String {
    format!("status {:?}\nstdout:\n{}\nstderr:\n{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn status_services_and_ping() {
    let s = start();
    let out = keelctl(&s.rw, &["status"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("uptime") && stdout.contains("services"), "{}", text(&out));

    let out = keelctl(&s.ro, &["services"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let side = stdout.lines().find(|l| l.contains("side")).unwrap_or_else(|| panic!("{}", text(&out)));
    assert!(side.contains("ready"), "{side}");
    assert!(stdout.lines().any(|l| l.contains("missing") && l.contains("off")), "{}", text(&out));

    let out = keelctl(&s.ro, &["ping"]);
    assert!(out.status.success(), "{}", text(&out));
    drop(s);
}

#[test]
fn services_lists_a_full_table() {
    // 128 services (the most a configuration may have), most with 32-byte names: many
    // times what one output buffer holds.
    let names = service_names();
    assert_eq!(names.len(), 128);
    let s = start();
    let out = keelctl(&s.ro, &["--json", "services"]);
    assert!(out.status.success(), "{}", text(&out));
    let listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| Some(l.split("\"name\":\"").nth(1)?.split('"').next()?.to_string()))
        .collect();
    assert_eq!(listed.len(), names.len(), "entries listed");
    assert_eq!(listed, names);
}

#[test]
fn read_only_channels_refuse_changes() {
    let s = start();
    let out = keelctl(&s.ro, &["stop", "side"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("denied"), "{}", text(&out));
    let out = keelctl(&s.rw, &["stop", "nosuch"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // The answers themselves, and side untouched.
    let mut ro = Raw::connect(&s.ro);
    ro.send(1, &Message::Stop { name: b"side" });
    let denied = ro.until(5 * SECOND, |_, m| matches!(m, Message::ErrorReply { req: 1, code: ErrorCode::Denied, .. }));
    assert!(denied.is_some(), "ErrorReply code 3 (denied)");
    let out = keelctl(&s.ro, &["--json", "services"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let side = stdout.lines().find(|l| l.contains("\"side\"")).unwrap_or_else(|| panic!("{}", text(&out)));
    assert!(side.contains("\"state\":\"ready\"") && side.contains("\"restarts\":0"), "{side}");
}

#[test]
fn restart_a_service() {
    let mut s = start();
    let out = keelctl(&s.rw, &["restart", "side"]);
    assert!(out.status.success(), "{}", text(&out));
    s.ns.wait_for("svc side: stopping -> waiting", 5 * SECOND);
    s.ns.wait_for("svc side: waiting -> ready", 5 * SECOND);
    let out = keelctl(&s.rw, &["--json", "services"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let side = stdout.lines().find(|l| l.contains("\"side\"")).unwrap_or_else(|| panic!("{}", text(&out)));
    assert!(side.contains("\"restarts\":1"), "{side}");
}

#[test]
fn logs_follow_streams_new_lines() {
    let s = start();
    let mut child = Command::new(common::keelctl_bin())
        .args(["--unix", &s.rw, "logs", "-f", "-n", "2", "ticker"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let until = Instant::now() + 10 * SECOND;
    let mut ticks = Vec::new();
    while ticks.len() < 5 && Instant::now() < until {
        match lines.next() {
            Some(Ok(line)) if line.contains("tick-") => ticks.push(line),
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(ticks.len() >= 5, "followed lines: {ticks:?}");
    assert!(ticks.iter().all(|l| l.contains("ticker")), "{ticks:?}");
}

#[test]
fn events_and_dmesg() {
    let s = start();
    let out = keelctl(&s.ro, &["events", "--since", "0"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("side") && stdout.contains("ready"), "{}", text(&out));
    assert!(stdout.contains("mount /proc"), "boot phases are events: {}", text(&out));
    let out = keelctl(&s.ro, &["dmesg", "-n", "3"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3, "{}", text(&out));
}

#[test]
fn answers_larger_than_the_output_buffer_keep_flowing() {
    let s = start();
    std::thread::sleep(SECOND); // the ticker fills the journal
    let out = keelctl(&s.ro, &["logs", "-n", "40"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 40, "{}", text(&out));
    // 60 kernel records are several buffers full; with the ticker stopped, nothing else
    // wakes keel meanwhile.
    assert!(keelctl(&s.rw, &["stop", "ticker"]).status.success());
    std::thread::sleep(SECOND / 2);
    let out = keelctl(&s.ro, &["--json", "dmesg", "-n", "60"]);
    assert!(out.status.success(), "{}", text(&out));
    let n = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(n, 60.min(dmesg_records()), "{}", text(&out));
}

#[test]
fn long_kernel_records_arrive_whole_or_cut_with_a_marker() {
    // Three records written to the kernel log (this machine's: keel reads the host's
    // /dev/kmsg): one whose text (as /dev/kmsg escapes it) is exactly the most a Log message
    // carries, one longer, then a short one. Non-printable bytes are read back as `\xNN`.
    const TEXT_MAX: usize = keel_proto::MAX_PAYLOAD - 14;
    let s = start();
    let id = format!("keel-test-{}-{:?}", std::process::id(), std::thread::current().id()).replace(['(', ')'], "");
    let whole_head = format!("{id} whole ");
    let filler = TEXT_MAX - whole_head.len() - 4 * 100;
    let mut whole = whole_head.clone().into_bytes();
    whole.extend([b'\x01'; 100]);
    whole.extend(vec![b'w'; filler]);
    let mut long = format!("{id} long ").into_bytes();
    long.extend([b'\x02'; 300]);
    long.extend(b"end");
    let short = format!("{id} after");
    let mut kmsg = std::fs::OpenOptions::new().write(true).open("/dev/kmsg").unwrap();
    for record in [&whole[..], &long, short.as_bytes()] {
        kmsg.write_all(&[b"<6>", record, b"\n"].concat()).unwrap();
    }
    let escaped = |raw: &[u8]| -> Vec<u8> {
        raw.iter().flat_map(|&b| if b < 0x20 { format!("\\x{b:02x}").into_bytes() } else { vec![b] }).collect()
    };

    let mut client = Raw::connect(&s.ro);
    client.send(1, &Message::Dmesg { tail: 50, follow: false, previous: false });
    let mut ours: Vec<Vec<u8>> = Vec::new();
    let end = client.until(10 * SECOND, |_, m| {
        if let Message::Log { text, .. } = m {
            if text.starts_with(id.as_bytes()) {
                ours.push(text.to_vec());
            }
        }
        matches!(m, Message::Reply { req: 1, body: ReplyBody::End } | Message::Lost { .. })
    });
    let (t, payload) = end.expect("an End");
    assert_eq!(Message::parse(t, &payload), Ok(Message::Reply { req: 1, body: ReplyBody::End }), "nothing was lost");
    assert_eq!(ours.len(), 3, "records: {:?}", ours.iter().map(|t| String::from_utf8_lossy(&t[..t.len().min(60)]).into_owned()).collect::<Vec<_>>());
    assert_eq!(ours[0].len(), TEXT_MAX);
    assert_eq!(ours[0], escaped(&whole), "the largest text arrives whole");
    let cut = "…".as_bytes();
    assert_eq!(ours[1].len(), TEXT_MAX, "a longer one is cut to the most");
    assert!(ours[1].ends_with(cut), "and ends with the marker");
    assert_eq!(ours[1][..TEXT_MAX - cut.len()], escaped(&long)[..TEXT_MAX - cut.len()]);
    assert_eq!(ours[2], short.as_bytes());
}

/// How many records the kernel log holds (each read of /dev/kmsg is one).
fn dmesg_records() -> usize {
    Command::new("dmesg").output().map(|o| String::from_utf8_lossy(&o.stdout).lines().count()).unwrap_or(0)
}

#[test]
fn poweroff_over_the_protocol() {
    let mut s = start();
    let out = keelctl(&s.ro, &["poweroff"]);
    assert_eq!(out.status.code(), Some(1), "read-only: {}", text(&out));
    let out = keelctl(&s.rw, &["poweroff"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(s.ns.wait_end(10 * SECOND), Some(SIGINT));
    assert!(s.ns.log().contains("poweroff requested (debug client)"), "log:\n{}", s.ns.log());
}

#[test]
fn a_stalled_client_does_not_block_pid1() {
    // The flooding service fills the journal (and so the stalled client's socket) fast.
    let mut s = start_with(&["flood"]);
    // Connect, ask to follow everything, and never read.
    let mut stalled = Raw::connect(&s.rw);
    stalled.send(1, &Message::Logs { tail: 1000, follow: true, service: b"", previous: false });
    std::thread::sleep(2 * SECOND);
    let out = keelctl(&s.rw, &["ping"]);
    assert!(out.status.success(), "{}", text(&out));
    s.ns.signal(12);
    assert_eq!(s.ns.wait_end(10 * SECOND), Some(SIGINT));
    drop(stalled);
}

#[test]
fn replies_get_through_a_full_stream() {
    // A client follows a flood without reading, so its output buffer is full; then it asks
    // many things at once: every answer comes, among the records.
    let s = start_with(&["flood"]);
    let mut client = Raw::connect(&s.rw);
    client.send(1, &Message::Logs { tail: 1000, follow: true, service: b"", previous: false });
    std::thread::sleep(SECOND);
    const PINGS: u16 = 40;
    for n in 0..PINGS {
        client.send(2 + n, &Message::Ping { nonce: n.into() });
    }
    let mut answered = std::collections::BTreeSet::new();
    while answered.len() < PINGS as usize {
        let pong = client.until(10 * SECOND, |_, m| matches!(m, Message::Reply { body: ReplyBody::Pong { .. }, .. }));
        let Some((t, payload)) = pong else { panic!("Pongs for {} of {PINGS} Pings", answered.len()) };
        if let Ok(Message::Reply { req, body: ReplyBody::Pong { nonce } }) = Message::parse(t, &payload) {
            assert_eq!(u32::from(req), nonce + 2, "each Pong answers its Ping");
            answered.insert(nonce);
        }
    }
    client.send(2 + PINGS, &Message::Cancel);
    let ok = client.until(10 * SECOND, |_, m| matches!(m, Message::Reply { req, body: ReplyBody::Ok } if *req == 2 + PINGS));
    assert!(ok.is_some(), "no Ok for Cancel");
}

#[test]
fn a_new_client_always_gets_in() {
    // Client slots (4, all channels together) filled with clients that follow the logs and
    // stop reading, and one more: each new one gets in, and the one idle longest is told
    // why it goes (ErrorReply code 7) and closed.
    const MAX_CLIENTS: usize = 4;
    let s = start();
    let mut stalled: Vec<Raw> = Vec::new();
    for i in 0..=MAX_CLIENTS {
        let mut c = Raw::connect(if i % 2 == 0 { &s.rw } else { &s.ro });
        c.send(1, &Message::Logs { tail: 1, follow: true, service: b"", previous: false });
        let served = c.until(5 * SECOND, |_, m| matches!(m, Message::Log { .. }));
        assert!(served.is_some(), "client {i} is not served");
        stalled.push(c);
    }
    let evicted = |c: &mut Raw| {
        let notice = c.until(5 * SECOND, |_, m| matches!(m, Message::ErrorReply { code: ErrorCode::Evicted, .. }));
        notice.is_some_and(|(t, p)| matches!(Message::parse(t, &p), Ok(Message::ErrorReply { req: 1, .. }))) && c.ended(5 * SECOND)
    };
    assert!(evicted(&mut stalled[0]), "the first client is told and closed");
    for c in &mut stalled[1..] {
        assert!(!c.ended(SECOND / 10), "the others stay");
    }
    let out = keelctl(&s.ro, &["ping"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(evicted(&mut stalled[1]), "then the second");
    assert!(!stalled[2].ended(SECOND / 10));
}

/// A client speaking the protocol itself, frame by frame.
struct Raw {
    stream: UnixStream,
    rx: BinaryDeframer<MAX_BODY>,
    input: Vec<u8>,
}

impl Raw {
    fn connect(path: &str) -> Raw {
        Raw { stream: UnixStream::connect(path).unwrap(), rx: BinaryDeframer::new(), input: Vec::new() }
    }

    fn send(&mut self, seq: u16, msg: &Message) {
        let mut body = [0u8; MAX_BODY];
        let len = keel_proto::emit_message(seq, msg, &mut body).unwrap();
        let mut frame = [0u8; keel_proto::MAX_BINARY_LEN];
        let n = keel_proto::emit_binary(&body[..len], &mut frame).unwrap();
        self.stream.write_all(&frame[..n]).unwrap();
    }

    /// Whether the peer closes the connection within `timeout` (what it sends is dropped).
    fn ended(&mut self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while let Some(left) = until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => return false,
                Err(_) => return true,
            }
        }
        false
    }

    /// Read frames until `want(seq, message)` holds (Some: that message's type and payload)
    /// or the peer closes or `timeout` passes (None).
    fn until(&mut self, timeout: Duration, mut want: impl FnMut(u16, &Message) -> bool) -> Option<(u8, Vec<u8>)> {
        let until = Instant::now() + timeout;
        loop {
            let mut input = &self.input[..];
            while let Some(f) = self.rx.next(&mut input) {
                if Message::parse(f.msg_type, f.payload).is_ok_and(|m| want(f.seq, &m)) {
                    let found = (f.msg_type, f.payload.to_vec());
                    self.input = input.to_vec();
                    return Some(found);
                }
            }
            let left = until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut buf = [0u8; 4096];
            match self.stream.read(&mut buf) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.input = buf[..n].to_vec(),
            }
        }
    }
}
