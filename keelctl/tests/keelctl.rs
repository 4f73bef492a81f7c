//! keelctl, black-box, against a fake keel written here with std and `keel_proto`: a unix
//! socket that speaks the protocol in binary form or in the shared-line (APC) form with
//! console text between the frames, or over a pseudo-terminal standing in for a serial line.
//! Exit codes, stdout and stderr; line noise, a corrupt frame, lost records, retries (and
//! what is never retried), signals, the console. Every wait is bounded.
//! (End-to-end tests against the real keel live with the QEMU tests.)

use keel_proto::msg::types;
use keel_proto::{
    emit_apc, emit_binary, emit_message, ApcSplitter, BinaryDeframer, ErrorCode, EventKind, Message, Piece, PowerCmd,
    ReplyBody, LogSource, Stream, MAX_BODY,
};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// No test waits longer than this for anything.
const LIMIT: Duration = Duration::from_secs(20);

fn keelctl_bin() -> &'static str {
    env!("CARGO_BIN_EXE_keelctl")
}

/// A frame as the fake keel received it.
struct Got {
    seq: u16,
    msg_type: u8,
    payload: Vec<u8>,
}

impl Got {
    fn message(&self) -> Message<'_> {
        Message::parse(self.msg_type, &self.payload).expect("a frame keel can parse")
    }
}

/// What the fake keel talks over: a unix socket, or a pseudo-terminal's master side.
trait Line: Read + Write + Send {}
impl<T: Read + Write + Send> Line for T {}

/// The fake keel's side of one connection.
struct Peer {
    stream: Box<dyn Line>,
    shared: bool,
    seq: u16,
    bin: BinaryDeframer<MAX_BODY>,
    apc: ApcSplitter<MAX_BODY>,
    buf: Vec<u8>,
    pos: usize,
    /// Text (outside frames) the client wrote on a shared line.
    text: Vec<u8>,
}

impl Peer {
    fn new(stream: UnixStream, shared: bool) -> Peer {
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Peer::on(Box::new(stream), shared)
    }

    /// Over any line whose reads give up within 10 s.
    fn on(stream: Box<dyn Line>, shared: bool) -> Peer {
        Peer {
            stream,
            shared,
            seq: 0,
            bin: BinaryDeframer::new(),
            apc: ApcSplitter::new(),
            buf: Vec::new(),
            pos: 0,
            text: Vec::new(),
        }
    }

    /// The bytes of frame `seq` carrying `msg`, in this line's form.
    fn wire(&self, seq: u16, msg: &Message) -> Vec<u8> {
        let mut body = [0u8; MAX_BODY];
        let n = emit_message(seq, msg, &mut body).unwrap();
        let mut out = vec![0u8; 2048];
        let len = if self.shared { emit_apc(&body[..n], &mut out) } else { emit_binary(&body[..n], &mut out) }.unwrap();
        out.truncate(len);
        out
    }

    fn send(&mut self, msg: &Message) {
        let w = self.wire(self.seq, msg);
        self.seq += 1;
        self.raw(&w);
    }

    /// A frame whose CRC is wrong: it uses up a sequence number, as a frame damaged on the
    /// line does.
    fn send_corrupt(&mut self, msg: &Message) {
        let mut body = [0u8; MAX_BODY];
        let n = emit_message(self.seq, msg, &mut body).unwrap();
        self.seq += 1;
        body[n - 1] ^= 0x55;
        let mut out = vec![0u8; 2048];
        let len = if self.shared { emit_apc(&body[..n], &mut out) } else { emit_binary(&body[..n], &mut out) }.unwrap();
        self.raw(&out[..len]);
    }

    /// A frame of a message type keel does not have (yet).
    fn send_unknown_type(&mut self, msg_type: u8, payload: &[u8]) {
        let mut body = vec![1, 0, 0, msg_type];
        body[1..3].copy_from_slice(&self.seq.to_le_bytes());
        self.seq += 1;
        body.extend_from_slice(payload);
        let crc = crc32(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        let mut out = vec![0u8; 2048];
        let len = if self.shared { emit_apc(&body, &mut out) } else { emit_binary(&body, &mut out) }.unwrap();
        self.raw(&out[..len]);
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next frame from the client (10 s at most).
    fn recv(&mut self) -> Got {
        self.try_recv().expect("the client sent a frame")
    }

    /// The next frame, None when the client closes the connection.
    fn try_recv(&mut self) -> Option<Got> {
        loop {
            while self.pos < self.buf.len() {
                let mut input = &self.buf[self.pos..];
                let before = input.len();
                let got = if self.shared {
                    match self.apc.next(&mut input) {
                        Some(Piece::Frame(f)) => {
                            Some(Got { seq: f.seq, msg_type: f.msg_type, payload: f.payload.to_vec() })
                        }
                        Some(Piece::Text(t)) => {
                            self.text.extend_from_slice(t);
                            None
                        }
                        None => None,
                    }
                } else {
                    self.bin.next(&mut input).map(|f| Got {
                        seq: f.seq,
                        msg_type: f.msg_type,
                        payload: f.payload.to_vec(),
                    })
                };
                self.pos += before - input.len();
                if got.is_some() {
                    return got;
                }
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).expect("the client wrote within 10 s");
            if n == 0 {
                return None;
            }
            self.buf = chunk[..n].to_vec();
            self.pos = 0;
        }
    }

    /// Read until the text the client wrote (outside frames) ends with `want`.
    fn wait_text(&mut self, want: &[u8]) {
        while !self.text.ends_with(want) {
            let mut input = &self.buf[self.pos..];
            if input.is_empty() {
                let mut chunk = [0u8; 4096];
                let n = self.stream.read(&mut chunk).expect("the client wrote within 10 s");
                assert!(n > 0, "the client closed the connection; its text: {:?}", self.text);
                self.buf = chunk[..n].to_vec();
                self.pos = 0;
                continue;
            }
            let before = input.len();
            match self.apc.next(&mut input) {
                Some(Piece::Text(t)) => self.text.extend_from_slice(t),
                Some(Piece::Frame(f)) => panic!("unexpected frame type {:#x}", f.msg_type),
                None => {}
            }
            self.pos += before - input.len();
        }
    }

    /// One line the client wrote before any frame, read byte by byte (a hybrid-vsock
    /// backend's `CONNECT PORT`).
    fn line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        while !line.ends_with(b"\n") {
            let mut b = [0u8; 1];
            assert_eq!(self.stream.read(&mut b).expect("the client wrote within 10 s"), 1, "{line:?}");
            line.push(b[0]);
        }
        line
    }

    /// What a stream connection starts with: keel's Hello, the client's ClientHello.
    fn handshake(&mut self) {
        self.handshake_with(hello());
    }

    /// The same with this Hello (another version, other features).
    fn handshake_with(&mut self, hello: Message) {
        self.send(&hello);
        let h = self.recv();
        assert_eq!((h.seq, h.msg_type), (0, types::CLIENT_HELLO));
        match h.message() {
            Message::ClientHello { proto: 1, client } => {
                assert!(client.starts_with(b"keelctl "), "{:?}", String::from_utf8_lossy(client))
            }
            other => panic!("{other:?}"),
        }
    }

    /// The handshake and the one request after it.
    fn request(&mut self) -> Got {
        self.handshake();
        self.recv()
    }
}

fn crc32(data: &[u8]) -> u32 {
    keel_proto::crc::crc32(data)
}

fn hello() -> Message<'static> {
    Message::Hello { proto: 1, keel_version: b"0.1.0", features: 0 }
}

/// A fake keel on a fresh unix socket, serving one connection with `script`.
struct Fake {
    path: PathBuf,
    server: Option<thread::JoinHandle<()>>,
}

static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn socket_path() -> PathBuf {
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("keelctl-test-{}-{n}.sock", std::process::id()))
}

fn fake(shared: bool, script: impl FnOnce(&mut Peer) + Send + 'static) -> Fake {
    let path = socket_path();
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let server = thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let start = Instant::now();
        let stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && start.elapsed() < LIMIT => {
                    thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("no client came: {e}"),
            }
        };
        stream.set_nonblocking(false).unwrap();
        let mut peer = Peer::new(stream, shared);
        script(&mut peer);
    });
    Fake { path, server: Some(server) }
}

impl Fake {
    fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// Wait for the script to end; its assertion failures become the test's.
    fn join(mut self) {
        if let Some(s) = self.server.take() {
            if let Err(e) = s.join() {
                std::panic::resume_unwind(e);
            }
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn spawn(args: &[&str]) -> Child {
    Command::new(keelctl_bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait for the end (LIMIT at most, then kill it and fail).
fn finish(child: Child) -> Out {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(LIMIT) {
        Ok(out) => {
            let out = out.unwrap();
            Out {
                code: out.status.code().unwrap_or_else(|| panic!("killed by a signal: {:?}", out.status)),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        }
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("keelctl {pid} still running after {LIMIT:?}");
        }
    }
}

/// Run keelctl with an empty stdin.
fn keelctl(args: &[&str]) -> Out {
    let mut child = spawn(args);
    drop(child.stdin.take());
    finish(child)
}

/// Run keelctl against `fake`, then check the fake's own assertions.
fn against(fake: Fake, args: &[&str]) -> Out {
    let mut all = vec!["--unix", fake.path()];
    all.extend_from_slice(args);
    let out = keelctl(&all);
    fake.join();
    out
}

fn status_reply(req: u16) -> Message<'static> {
    Message::Reply {
        req,
        body: ReplyBody::Status {
            uptime_ns: 12_345_678_901,
            ready_ns: 512_000_000,
            rss_kib: 88,
            services: 3,
            failed: 1,
            config: b"/etc/keel/keel.db",
        },
    }
}

const STATUS_TEXT: &str = "\
version:  0.1.0
uptime:   12.345 s
ready:    0.512 s
rss:      88 KiB
services: 3
failed:   1
config:   /etc/keel/keel.db
";

#[test]
fn status_survives_noise_and_a_corrupt_frame() {
    let f = fake(false, |p| {
        let req = p.request();
        assert_eq!((req.seq, req.msg_type), (1, types::STATUS));
        // keel also answers the ClientHello with a Hello: a second one is ignored.
        p.send(&hello());
        // Line noise ending in a delimiter, a frame damaged on the line, more noise.
        p.raw(b"\x07\x31\xffgarbage\x00\x00");
        p.send_corrupt(&status_reply(1));
        p.raw(&[0x05, 0x11, 0x00]);
        p.send(&status_reply(req.seq));
    });
    let out = against(f, &["status"]);
    assert_eq!(out.stdout, STATUS_TEXT);
    assert_eq!(out.stderr, "keelctl: 1 frame lost\n");
    assert_eq!(out.code, 0);
}

#[test]
fn status_json_and_verbose_notes() {
    let f = fake(false, |p| {
        let req = p.request();
        p.raw(b"\x02noise\x00");
        p.send_unknown_type(0x3e, b"from the future");
        p.send(&Message::Reply { req: 99, body: ReplyBody::Ok });
        p.send(&status_reply(req.seq));
    });
    let out = against(f, &["--json", "-v", "status"]);
    assert_eq!(
        out.stdout,
        "{\"type\":\"status\",\"version\":\"0.1.0\",\"uptime_ns\":12345678901,\"ready_ns\":512000000,\"rss_kib\":88,\"services\":3,\"failed\":1,\"config\":\"/etc/keel/keel.db\"}\n"
    );
    assert!(out.stderr.contains("keelctl: connected to keel 0.1.0 on "), "{}", out.stderr);
    assert!(out.stderr.contains("keelctl: dropped 1 malformed frame\n"), "{}", out.stderr);
    assert!(out.stderr.contains("keelctl: skipping a message of unknown type 0x3e\n"), "{}", out.stderr);
    assert!(out.stderr.contains("keelctl: skipping an answer to frame 99"), "{}", out.stderr);
    assert!(!out.stderr.contains("lost"), "{}", out.stderr);
    assert_eq!(out.code, 0);
}

fn entry(req: u16, name: &'static [u8], state: u8, pid: i32, restarts: u32) -> Message<'static> {
    Message::Reply { req, body: ReplyBody::ServiceEntry { name, state: state.into(), pid, restarts } }
}

fn serve_services(p: &mut Peer) {
    let req = p.request();
    assert_eq!(req.msg_type, types::SERVICES);
    p.send(&entry(req.seq, b"console", 2, 42, 0));
    // A reply kind from a newer keel, skipped.
    let mut payload = req.seq.to_le_bytes().to_vec();
    payload.push(0x77);
    p.send_unknown_type(types::REPLY, &payload);
    p.send(&entry(req.seq, b"dhcp-client", 6, 0, 12));
    p.send(&Message::Reply { req: req.seq, body: ReplyBody::End });
}

#[test]
fn services_table() {
    let out = against(fake(false, serve_services), &["services"]);
    assert_eq!(
        out.stdout,
        "\
NAME         STATE    PID  RESTARTS
console      ready     42         0
dhcp-client  backoff    -        12
"
    );
    assert_eq!((out.stderr.as_str(), out.code), ("", 0));
}

#[test]
fn services_json() {
    let out = against(fake(false, serve_services), &["services", "--json", "--verbose"]);
    assert_eq!(
        out.stdout,
        "\
{\"type\":\"service\",\"name\":\"console\",\"state\":\"ready\",\"pid\":42,\"restarts\":0}
{\"type\":\"service\",\"name\":\"dhcp-client\",\"state\":\"backoff\",\"pid\":0,\"restarts\":12}
"
    );
    assert!(out.stderr.contains("keelctl: skipping a reply of unknown kind 119\n"), "{}", out.stderr);
    assert_eq!(out.code, 0);
}

#[test]
fn start_denied_is_exit_1() {
    let f = fake(false, |p| {
        let req = p.request();
        match req.message() {
            Message::Start { name: b"sshd" } => {}
            other => panic!("{other:?}"),
        }
        p.send(&Message::ErrorReply { req: req.seq, code: ErrorCode::Denied, message: b"read-only channel" });
    });
    let out = against(f, &["start", "sshd"]);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str(), out.code), ("", "keelctl: denied: read-only channel\n", 1));
}

#[test]
fn stop_restart_and_unknown_service() {
    let f = fake(false, |p| {
        let req = p.request();
        assert!(matches!(req.message(), Message::Stop { name: b"dhcp" }));
        p.send(&Message::Reply { req: req.seq, body: ReplyBody::Ok });
    });
    let out = against(f, &["stop", "dhcp"]);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str(), out.code), ("", "", 0));

    let f = fake(false, |p| {
        let req = p.request();
        assert!(matches!(req.message(), Message::Restart { name: b"dhcp" }));
        p.send(&Message::Reply { req: req.seq, body: ReplyBody::Ok });
    });
    let out = against(f, &["--json", "restart", "dhcp"]);
    assert_eq!((out.stdout.as_str(), out.code), ("{\"type\":\"ok\"}\n", 0));

    let f = fake(false, |p| {
        let req = p.request();
        p.send(&Message::ErrorReply { req: req.seq, code: ErrorCode::NoSuchService, message: b"no such service" });
    });
    let out = against(f, &["start", "nope"]);
    assert_eq!((out.stderr.as_str(), out.code), ("keelctl: no_such_service: no such service\n", 1));
}

fn log_msg(boot_ns: u64, source: LogSource, service: &'static [u8], text: &'static [u8]) -> Message<'static> {
    Message::Log { boot_ns, source, stream: Stream::Out, service, text }
}

#[test]
fn logs_tail_with_lost_records() {
    let f = fake(false, |p| {
        let req = p.request();
        match req.message() {
            Message::Logs { tail: 3, follow: false, service: b"", previous: false } => {}
            other => panic!("{other:?}"),
        }
        p.send(&log_msg(1_000_000_000, LogSource::Keel, b"", b"ready"));
        p.send(&Message::Lost { records: 3 });
        p.send(&log_msg(1_234_567_891, LogSource::Service, b"sshd", b"listening\n"));
        p.send(&log_msg(2_000_000_000, LogSource::Kernel, b"", b"eth0: link up"));
        p.send(&Message::Reply { req: req.seq, body: ReplyBody::End });
    });
    let out = against(f, &["logs", "-n", "3"]);
    assert_eq!(
        out.stdout,
        "\
[    1.000000] keel: ready
[    1.234567] sshd| listening
[    2.000000] eth0: link up
"
    );
    assert_eq!(out.stderr, "keelctl: 3 records lost\n");
    assert_eq!(out.code, 0);
}

#[test]
fn logs_of_one_service_json() {
    let f = fake(false, |p| {
        let req = p.request();
        match req.message() {
            Message::Logs { tail: u16::MAX, follow: false, service: b"sshd", previous: false } => {}
            other => panic!("{other:?}"),
        }
        p.send(&Message::Log {
            boot_ns: 5,
            source: LogSource::Service,
            stream: Stream::Err,
            service: b"sshd",
            text: b"bad \"key\"\tfile\n",
        });
        p.send(&Message::Reply { req: req.seq, body: ReplyBody::End });
    });
    let out = against(f, &["--json", "logs", "sshd"]);
    assert_eq!(
        out.stdout,
        "{\"type\":\"log\",\"boot_ns\":5,\"source\":\"service\",\"stream\":\"stderr\",\"service\":\"sshd\",\"text\":\"bad \\\"key\\\"\\tfile\"}\n"
    );
    assert_eq!((out.stderr.as_str(), out.code), ("", 0));
}

#[test]
fn dmesg_and_events() {
    let f = fake(false, |p| {
        let req = p.request();
        assert!(matches!(req.message(), Message::Dmesg { tail: 1, follow: false, previous: false }));
        p.send(&log_msg(3_000, LogSource::Kernel, b"", b"Booting Linux"));
        p.send(&Message::Reply { req: req.seq, body: ReplyBody::End });
    });
    let out = against(f, &["dmesg", "-n1"]);
    assert_eq!((out.stdout.as_str(), out.code), ("[    0.000003] Booting Linux\n", 0));

    let f = fake(false, |p| {
        let req = p.request();
        assert!(matches!(req.message(), Message::Events { since: 7, follow: false }));
        p.send(&Message::Event {
            boot_ns: 2_000_000_000,
            event_seq: 7,
            kind: EventKind::ServiceState,
            name: b"sshd",
            detail: b"running",
        });
        p.send(&Message::Event {
            boot_ns: 2_500_000_000,
            event_seq: 8,
            kind: EventKind::PowerRequest,
            name: b"poweroff",
            detail: b"",
        });
        p.send(&Message::Reply { req: req.seq, body: ReplyBody::End });
    });
    let out = against(f, &["events", "--since", "7"]);
    assert_eq!(out.stdout, "[    2.000000] #7 service sshd: running\n[    2.500000] #8 power poweroff\n");
    assert_eq!(out.code, 0);
}

#[test]
fn the_previous_boot_begins_with_how_it_ended() {
    let hello_previous = Message::Hello { proto: 1, keel_version: b"0.1.0", features: keel_proto::msg::features::PREVIOUS_BOOT };
    let f = fake(false, move |p| {
        p.handshake_with(hello_previous);
        let req = p.recv();
        assert!(matches!(req.message(), Message::Dmesg { tail: 2, follow: false, previous: true }), "{:?}", req.message());
        let (name, detail) = (&b"kernel panic"[..], &b"Panic dump"[..]);
        p.send(&Message::Event { boot_ns: 2_100_000_000, event_seq: 19, kind: EventKind::PreviousBoot, name, detail });
        p.send(&log_msg(2_410_100_000, LogSource::Kernel, b"", b"Kernel panic - not syncing: sysrq triggered crash"));
        p.send(&log_msg(2_427_177_000, LogSource::Kernel, b"", b"Kernel Offset: disabled"));
        p.send(&Message::Reply { req: req.seq, body: ReplyBody::End });
    });
    let out = against(f, &["dmesg", "--previous", "-n", "2"]);
    assert_eq!(
        out.stdout,
        "previous boot ended: kernel panic (Panic dump)\n[    2.410100] Kernel panic - not syncing: sysrq triggered crash\n[    2.427177] Kernel Offset: disabled\n"
    );
    assert_eq!((out.stderr.as_str(), out.code), ("", 0));

    let f = fake(false, move |p| {
        p.handshake_with(hello_previous);
        let req = p.recv();
        assert!(matches!(req.message(), Message::Logs { tail: u16::MAX, follow: false, service: b"", previous: true }));
        let (name, detail) = (&b"reboot"[..], &b"Shutdown dump, keel's marker in it"[..]);
        p.send(&Message::Event { boot_ns: 5, event_seq: 3, kind: EventKind::PreviousBoot, name, detail });
        p.send(&log_msg(2_855_000_000, LogSource::Keel, b"", b"clean reboot"));
        p.send(&Message::Reply { req: req.seq, body: ReplyBody::End });
    });
    let out = against(f, &["--json", "logs", "--previous"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(lines[0].contains("\"kind\":\"previous\"") && lines[0].contains("\"name\":\"reboot\""), "{}", lines[0]);
    assert!(lines[1].contains("\"text\":\"clean reboot\""), "{}", lines[1]);

    // A keel without the feature would take the request for this boot's: not sent at all.
    let f = fake(false, |p| {
        p.handshake();
        assert!(p.try_recv().is_none(), "a request was sent");
    });
    let place = f.path().to_string();
    let out = against(f, &["logs", "--previous"]);
    assert_eq!((out.stderr, out.code), (format!("keelctl: keel 0.1.0 on {place} does not serve the previous boot\n"), 1));
}

#[test]
fn ping_prints_the_round_trip() {
    let f = fake(false, |p| {
        let req = p.request();
        let Message::Ping { nonce } = req.message() else { panic!("not a ping") };
        // A stale pong (another nonce) is not the answer.
        p.send(&Message::Reply { req: req.seq, body: ReplyBody::Pong { nonce: nonce.wrapping_add(1) } });
        p.send(&Message::Reply { req: req.seq, body: ReplyBody::Pong { nonce } });
    });
    let out = against(f, &["ping"]);
    assert!(out.stdout.starts_with("pong from keel 0.1.0: time="), "{}", out.stdout);
    assert!(out.stdout.ends_with(" ms\n"), "{}", out.stdout);
    assert_eq!((out.stderr.as_str(), out.code), ("", 0));
}

#[test]
fn power_commands() {
    for (word, cmd) in [("reboot", PowerCmd::Reboot), ("poweroff", PowerCmd::PowerOff), ("halt", PowerCmd::Halt)] {
        let f = fake(false, move |p| {
            let req = p.request();
            match req.message() {
                Message::Power { cmd: c } => assert_eq!(c, cmd),
                other => panic!("{other:?}"),
            }
            p.send(&Message::Reply { req: req.seq, body: ReplyBody::Ok });
            // keel goes down: the connection closes.
        });
        let out = against(f, &[word]);
        assert_eq!((out.stdout.as_str(), out.stderr.as_str(), out.code), ("", "", 0), "{word}");
    }
}

#[test]
fn no_hello_is_exit_3_after_retries() {
    let (tx, rx) = mpsc::channel();
    let f = fake(false, move |p| {
        // Say nothing; count the ClientHellos until the client gives up.
        let mut hellos = 0;
        while let Some(got) = p.try_recv() {
            assert_eq!(got.msg_type, types::CLIENT_HELLO);
            assert_eq!(got.seq, hellos);
            hellos += 1;
        }
        tx.send(hellos).unwrap();
    });
    let path = f.path().to_string();
    let started = Instant::now();
    let out = against(f, &["--timeout", "0.6", "status"]);
    assert_eq!(out.stderr, format!("keelctl: no answer from keel on {path}\n"));
    assert_eq!(out.code, 3);
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(rx.recv().unwrap(), 3, "sent at 0, 1/3 and 2/3 of the timeout");
}

#[test]
fn an_unanswered_request_is_sent_again() {
    let f = fake(false, |p| {
        let first = p.request();
        assert_eq!((first.seq, first.msg_type), (1, types::STATUS));
        // The first request is "damaged": never answered. The second one is.
        let second = p.recv();
        assert_eq!((second.seq, second.msg_type), (2, types::STATUS));
        p.send(&status_reply(second.seq));
    });
    let out = against(f, &["--timeout", "0.9", "-v", "status"]);
    assert_eq!(out.stdout, STATUS_TEXT);
    assert!(out.stderr.contains("keelctl: no answer yet: sending the request again\n"), "{}", out.stderr);
    assert_eq!(out.code, 0);
}

/// keel answers `args`' request only after `delay`, well past the point where keelctl
/// used to send it again (a third of `--timeout`), then reads on until keelctl goes.
/// Returns keelctl's result and how many frames of the request's type keel received.
fn late_answer(args: &'static [&'static str], msg_type: u8, delay: Duration) -> (Out, u32) {
    let (tx, rx) = mpsc::channel();
    let f = fake(false, move |p| {
        let req = p.request();
        assert_eq!(req.msg_type, msg_type);
        thread::sleep(delay);
        p.send(&Message::Reply { req: req.seq, body: ReplyBody::Ok });
        let mut received = 1;
        while let Some(got) = p.try_recv() {
            received += u32::from(got.msg_type == msg_type);
        }
        tx.send(received).unwrap();
    });
    let out = against(f, args);
    (out, rx.recv_timeout(LIMIT).expect("the fake counted"))
}

/// A slow answer to restart must not mean two restarts: a request that changes state is
/// sent once (on a lossy serial line a resend was a double restart).
#[test]
fn a_late_answer_to_restart_is_one_restart() {
    let (out, restarts) =
        late_answer(&["--timeout", "2", "-v", "restart", "sshd"], types::RESTART, Duration::from_millis(1000));
    assert_eq!(restarts, 1, "restarts keel received; stderr: {}", out.stderr);
    assert!(!out.stderr.contains("sending the request again"), "{}", out.stderr);
    assert_eq!(out.code, 0);
}

#[test]
fn a_late_answer_to_reboot_is_one_reboot() {
    let (out, reboots) = late_answer(&["--timeout", "2", "-v", "reboot"], types::POWER, Duration::from_millis(1000));
    assert_eq!(reboots, 1, "power requests keel received; stderr: {}", out.stderr);
    assert!(out.stderr.contains("accepted reboot\n"), "{}", out.stderr);
    assert_eq!(out.code, 0);
}

/// No answer at all to a request that changes state: one frame, exit 3, and a message that
/// says it may have been done all the same.
#[test]
fn an_unanswered_stop_is_not_sent_again() {
    let (tx, rx) = mpsc::channel();
    let f = fake(false, move |p| {
        let req = p.request();
        assert_eq!(req.msg_type, types::STOP);
        let mut more = 0;
        while let Some(got) = p.try_recv() {
            more += 1;
            assert_eq!(got.msg_type, types::STOP);
        }
        tx.send(more).unwrap();
    });
    let path = f.path().to_string();
    let started = Instant::now();
    let out = against(f, &["--timeout", "0.6", "stop", "dhcp"]);
    assert_eq!(
        out.stderr,
        format!("keelctl: no answer from keel on {path} to stop (sent once, not repeated: it may have been done)\n")
    );
    assert_eq!(out.code, 3);
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(rx.recv().unwrap(), 0, "stop frames after the first");
}

#[test]
fn connection_closed_is_exit_3() {
    let f = fake(false, |p| {
        let _ = p.request();
        // and close without answering
    });
    let path = f.path().to_string();
    let out = against(f, &["status"]);
    assert_eq!((out.stderr, out.code), (format!("keelctl: connection to keel on {path} closed\n"), 3));
}

#[test]
fn cannot_connect_is_exit_3() {
    let path = socket_path();
    let out = keelctl(&["--unix", path.to_str().unwrap(), "status"]);
    assert!(out.stderr.starts_with(&format!("keelctl: cannot connect to {}: ", path.display())), "{}", out.stderr);
    assert_eq!((out.stdout.as_str(), out.code), ("", 3));
}

/// The master side of a pseudo-terminal as the fake keel's line; reads give up after 10 s.
struct PtyMaster(std::fs::File);

impl Read for PtyMaster {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let mut fds = [PollFd::new(&self.0, PollFlags::IN)];
        let ten_s = Timespec { tv_sec: 10, tv_nsec: 0 };
        if poll(&mut fds, Some(&ten_s))? == 0 {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.0.read(buf)
    }
}

impl Write for PtyMaster {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A pseudo-terminal: its master (the fake keel's end) and the path of its slave (a
/// serial device for keelctl).
fn pty() -> (PtyMaster, PathBuf) {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    (PtyMaster(std::fs::File::from(master)), PathBuf::from(name.to_str().unwrap()))
}

/// `--serial` on a terminal: keelctl sets it raw at `--baud` (what `stty raw -echo clocal
/// N` did), then speaks the protocol over it.
#[test]
fn serial_line_set_raw_then_status() {
    use rustix::termios::{tcgetattr, ControlModes, InputModes, LocalModes, OutputModes};
    let (master, slave) = pty();
    let dev = slave.clone();
    let server = thread::spawn(move || {
        let mut p = Peer::on(Box::new(master), false);
        // keelctl's first frame comes after it has set the line up.
        let h = p.recv();
        assert_eq!((h.seq, h.msg_type), (0, types::CLIENT_HELLO));
        let tty = std::fs::File::open(&dev).unwrap();
        let t = tcgetattr(&tty).unwrap();
        assert_eq!((t.input_speed(), t.output_speed()), (57_600, 57_600));
        assert!(!t.local_modes.intersects(LocalModes::ECHO | LocalModes::ICANON | LocalModes::ISIG));
        assert!(!t.output_modes.contains(OutputModes::OPOST));
        assert!(!t.input_modes.intersects(InputModes::ICRNL | InputModes::IXON));
        assert!(t.control_modes.contains(ControlModes::CLOCAL | ControlModes::CREAD | ControlModes::CS8));
        p.send(&hello());
        let req = p.recv();
        assert_eq!(req.msg_type, types::STATUS);
        // Bytes a cooked line would change (\r, \n, Ctrl-C, Ctrl-S) come through as they are.
        p.send(&Message::Reply {
            req: req.seq,
            body: ReplyBody::Status { uptime_ns: 0x0a0d_0313, ready_ns: 0, rss_kib: 0x11_13, services: 3, failed: 0, config: b"" },
        });
    });
    let out = keelctl(&["--serial", slave.to_str().unwrap(), "--baud", "57600", "--json", "status"]);
    if let Err(e) = server.join() {
        std::panic::resume_unwind(e);
    }
    assert_eq!(
        out.stdout,
        "{\"type\":\"status\",\"version\":\"0.1.0\",\"uptime_ns\":168624915,\"ready_ns\":0,\"rss_kib\":4371,\"services\":3,\"failed\":0,\"config\":\"\"}\n"
    );
    assert_eq!((out.stderr.as_str(), out.code), ("", 0));
}

/// A device that is not a terminal is used as it is, with a word about it.
#[test]
fn serial_not_a_terminal_is_used_as_it_is() {
    let out = keelctl(&["--serial", "/dev/null", "--timeout", "0.3", "status"]);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stderr);
    assert!(lines[0].starts_with("keelctl: /dev/null: cannot set the line raw at 115200 baud: "), "{}", lines[0]);
    assert!(lines[0].ends_with("; using it as it is"), "{}", lines[0]);
    // /dev/null reads as an empty line that ends at once.
    assert_eq!(lines[1], "keelctl: connection to keel on /dev/null closed");
    assert_eq!(out.code, 3);
}

/// vsock cannot be served here (no vhost-vsock): an address nobody listens on, or no
/// vsock at all, is a connection error either way.
#[test]
fn vsock_nobody_there_is_exit_3() {
    let out = keelctl(&["--vsock", "1:4294967295", "status"]);
    assert!(out.stderr.starts_with("keelctl: cannot connect to vsock 1:4294967295: "), "{}", out.stderr);
    assert_eq!(out.code, 3);
}

/// `--vsock-unix`: a hybrid-vsock backend (vhost-device-vsock, Firecracker) wants
/// `CONNECT PORT`, says `OK HOSTPORT`, and from then on the stream is keel's.
#[test]
fn vsock_unix_handshake_then_the_protocol() {
    let f = fake(false, |p| {
        assert_eq!(p.line(), b"CONNECT 1024\n");
        p.raw(b"OK 1234\n");
        let req = p.request();
        assert_eq!(req.msg_type, types::STATUS);
        p.send(&status_reply(req.seq));
    });
    let spec = format!("{}:1024", f.path());
    let out = keelctl(&["--vsock-unix", &spec, "status"]);
    f.join();
    assert_eq!((out.stdout.as_str(), out.stderr.as_str(), out.code), (STATUS_TEXT, "", 0));
}

/// Nothing listens on the guest's port: the backend closes the socket without an OK.
#[test]
fn vsock_unix_refused_is_exit_3() {
    let f = fake(false, |p| assert_eq!(p.line(), b"CONNECT 1025\n"));
    let spec = format!("{}:1025", f.path());
    let out = keelctl(&["--vsock-unix", &spec, "status"]);
    let path = f.path().to_string();
    f.join();
    let want = format!(
        "keelctl: cannot connect to vsock {path}:1025: the vsock backend closed the connection: \
         nothing listens on guest port 1025?\n"
    );
    assert_eq!((out.stdout.as_str(), out.stderr, out.code), ("", want, 3));
}

#[test]
fn usage_errors_are_exit_2() {
    for args in [
        &["status"][..],
        &["--unix", "s"],
        &["--unix", "s", "frob"],
        &["--unix", "s", "start"],
        &["--unix", "s", "status", "-f"],
        &["--unix", "s", "--serial", "t", "status"],
        &["--unix", "s", "--timeout", "soon", "status"],
    ] {
        let out = keelctl(args);
        assert_eq!(out.code, 2, "{args:?}");
        assert!(out.stderr.starts_with("keelctl: "), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("\nusage: keelctl "), "{args:?}: {}", out.stderr);
        assert_eq!(out.stdout, "");
    }
    let out = keelctl(&["--help"]);
    assert!(out.stdout.starts_with("usage: keelctl "));
    assert_eq!((out.stderr.as_str(), out.code), ("", 0));
    let out = keelctl(&["--version"]);
    assert_eq!((out.stdout.as_str(), out.code), (concat!("keelctl ", env!("CARGO_PKG_VERSION"), "\n"), 0));
}

/// Read the child's stdout on a thread; `wait_for` returns once it contains a text.
struct Watch {
    rx: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Watch {
    fn new(child: &mut Child) -> Watch {
        let mut stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        });
        Watch { rx, seen: Vec::new() }
    }

    fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + LIMIT;
        while !String::from_utf8_lossy(&self.seen).contains(text) {
            match self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(chunk) => self.seen.extend_from_slice(&chunk),
                Err(_) => panic!("no {text:?} in the output: {:?}", String::from_utf8_lossy(&self.seen)),
            }
        }
    }

    /// Everything, up to the end of the output.
    fn rest(mut self) -> String {
        while let Ok(chunk) = self.rx.recv_timeout(LIMIT) {
            self.seen.extend_from_slice(&chunk);
        }
        String::from_utf8_lossy(&self.seen).into_owned()
    }
}

#[test]
fn logs_follow_until_ctrl_c_sends_cancel() {
    let (tx, rx) = mpsc::channel();
    let f = fake(false, move |p| {
        let req = p.request();
        assert!(matches!(req.message(), Message::Logs { tail: 0, follow: true, service: b"", previous: false }));
        p.send(&log_msg(1_000_000, LogSource::Keel, b"", b"first"));
        p.send(&log_msg(2_000_000, LogSource::Keel, b"", b"second"));
        let cancel = p.recv();
        assert_eq!((cancel.seq, cancel.msg_type), (req.seq + 1, types::CANCEL));
        tx.send(()).unwrap();
    });
    let mut child = spawn(&["--unix", f.path(), "--timeout", "0.3", "logs", "-f", "-n", "0"]);
    let mut watch = Watch::new(&mut child);
    watch.wait_for("keel: second\n");
    // Well past the timeout: a follow does not time out.
    thread::sleep(Duration::from_millis(600));
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    rx.recv_timeout(LIMIT).expect("keelctl sent Cancel");
    let out = finish(child);
    assert_eq!(watch.rest(), "[    0.001000] keel: first\n[    0.002000] keel: second\n");
    assert_eq!((out.stderr.as_str(), out.code), ("", 130));
    f.join();
}

/// SIGTERM during a follow: Cancel, then exit 128 + 15.
#[test]
fn events_follow_until_sigterm_sends_cancel() {
    let (tx, rx) = mpsc::channel();
    let f = fake(false, move |p| {
        let req = p.request();
        assert!(matches!(req.message(), Message::Events { since: 0, follow: true }));
        p.send(&Message::Event { boot_ns: 0, event_seq: 0, kind: EventKind::BootPhase, name: b"mount", detail: b"" });
        let cancel = p.recv();
        assert_eq!((cancel.seq, cancel.msg_type), (req.seq + 1, types::CANCEL));
        tx.send(()).unwrap();
    });
    let mut child = spawn(&["--unix", f.path(), "events", "-f"]);
    let mut watch = Watch::new(&mut child);
    watch.wait_for("#0 boot mount\n");
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    rx.recv_timeout(LIMIT).expect("keelctl sent Cancel");
    let out = finish(child);
    assert_eq!((out.stderr.as_str(), out.code), ("", 143));
    f.join();
}

/// Kernel text on the line, in pieces and through the middle of lines, with keel's frames
/// between: `logs --shared` shows the text as lines and the records as lines.
#[test]
fn shared_line_logs_with_kernel_text() {
    let f = fake(true, |p| {
        p.raw(b"[    0.100000] Linux version 6.1.0\r\n[    0.2");
        p.send(&hello());
        p.raw(b"00000] Command line: console=ttyS0\r\n");
        let h = p.recv();
        assert_eq!(h.msg_type, types::CLIENT_HELLO);
        let req = p.recv();
        assert!(matches!(req.message(), Message::Logs { tail: u16::MAX, follow: false, service: b"", previous: false }));
        p.raw(b"[    1.000000] random: crng ");
        p.send(&log_msg(1_234_567_891, LogSource::Service, b"sshd", b"listening\n"));
        p.raw(b"init done\r\n\x1b[1mbold\x1b[0m text\r\n");
        // A damaged frame (not base64) is dropped, up to its ESC \.
        p.raw(b"\x1b_kAR!!!\x1b\\");
        p.raw(b"[    1.5] usb 1-1: new device\r\n");
        p.send(&Message::Reply { req: req.seq, body: ReplyBody::End });
        assert!(p.text.is_empty(), "the client wrote text: {:?}", p.text);
    });
    let out = against(f, &["--shared", "logs"]);
    assert_eq!(
        out.stdout,
        "\
[    0.100000] Linux version 6.1.0
[    0.200000] Command line: console=ttyS0
[    1.234567] sshd| listening
[    1.000000] random: crng init done
\\x1b[1mbold\\x1b[0m text
[    1.5] usb 1-1: new device
"
    );
    assert_eq!((out.stderr.as_str(), out.code), ("", 0));
}

#[test]
fn shared_line_status_drops_the_text_and_json_logs_carry_it() {
    let f = fake(true, |p| {
        p.raw(b"kernel says hi\r\n");
        let req = p.request();
        p.raw(b"more text\r\n");
        p.send(&status_reply(req.seq));
    });
    let out = against(f, &["--shared", "status"]);
    assert_eq!((out.stdout.as_str(), out.code), (STATUS_TEXT, 0));

    let f = fake(true, |p| {
        let req = p.request();
        p.raw(b"tab\there \"quoted\"\r\n");
        p.send(&Message::Reply { req: req.seq, body: ReplyBody::End });
    });
    let out = against(f, &["--shared", "--json", "dmesg"]);
    assert_eq!(out.stdout, "{\"type\":\"text\",\"text\":\"tab\\there \\\"quoted\\\"\"}\n");
    assert_eq!(out.code, 0);
}

/// The console: text byte for byte (a prompt has no newline), records as lines, keystrokes
/// to the line as they are, Ctrl-] to quit.
#[test]
fn console_passes_text_and_keystrokes() {
    let f = fake(true, |p| {
        p.raw(b"[    0.100000] Linux version 6.1.0\r\n");
        let h = p.recv();
        assert_eq!((h.seq, h.msg_type), (0, types::CLIENT_HELLO));
        p.send(&hello());
        p.send(&log_msg(1_500_000_000, LogSource::Keel, b"", b"ready"));
        p.send(&Message::Event {
            boot_ns: 1_600_000_000,
            event_seq: 3,
            kind: EventKind::ServiceState,
            name: b"console",
            detail: b"ready",
        });
        p.raw(b"~ # ");
        // What is typed arrives as text, outside any frame.
        p.wait_text(b"ls\n");
        p.raw(b"ls\r\nbin  dev  proc\r\n~ # ");
        // Ctrl-] is not passed on: the client closes the connection instead.
        assert!(p.try_recv().is_none());
        assert_eq!(p.text, b"ls\n");
    });
    let mut child = spawn(&["--unix", f.path(), "console"]);
    let mut stdin = child.stdin.take().unwrap();
    let mut watch = Watch::new(&mut child);
    watch.wait_for("~ # ");
    stdin.write_all(b"ls\n").unwrap();
    watch.wait_for("proc\r\n~ # ");
    stdin.write_all(b"\x1d").unwrap();
    let out = finish(child);
    assert_eq!(
        watch.rest(),
        "[    0.100000] Linux version 6.1.0\r\n[    1.500000] keel: ready\n[    1.600000] #3 service console: ready\n~ # ls\r\nbin  dev  proc\r\n~ # "
    );
    assert!(out.stderr.contains("Ctrl-] quits"), "{}", out.stderr);
    assert_eq!(out.code, 0);
    f.join();
}

/// The console on a terminal: raw while it runs (keystrokes, Ctrl-C included, go to the
/// line as typed), the terminal's own settings back when it ends.
#[test]
fn console_sets_the_terminal_raw_and_restores_it() {
    use rustix::termios::{tcgetattr, LocalModes, OutputModes};
    let f = fake(true, |p| {
        let h = p.recv();
        assert_eq!(h.msg_type, types::CLIENT_HELLO);
        p.raw(b"~ # ");
        p.wait_text(b"\x03");
        p.raw(b"^C\r\n~ # ");
        assert!(p.try_recv().is_none(), "Ctrl-] closes the connection");
        assert_eq!(p.text, b"\x03");
    });
    let (mut master, slave) = pty();
    let tty = std::fs::OpenOptions::new().read(true).write(true).open(&slave).unwrap();
    let before = tcgetattr(&tty).unwrap();
    assert!(before.local_modes.contains(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG));
    let mut child = Command::new(keelctl_bin())
        .args(["--unix", f.path(), "console"])
        .stdin(tty.try_clone().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut watch = Watch::new(&mut child);
    watch.wait_for("~ # ");
    let raw = tcgetattr(&tty).unwrap();
    assert!(!raw.local_modes.intersects(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG));
    assert!(!raw.output_modes.contains(OutputModes::OPOST));
    // Ctrl-C is a byte for the remote shell, not a signal for keelctl.
    master.write_all(b"\x03").unwrap();
    watch.wait_for("^C\r\n~ # ");
    master.write_all(b"\x1d").unwrap();
    let out = finish(child);
    assert_eq!(watch.rest(), "~ # ^C\r\n~ # ");
    // A raw terminal does not turn \n into \r\n: keelctl writes both.
    assert_eq!(out.stderr, format!("keelctl: console on {}; Ctrl-] quits\r\n", f.path()));
    assert_eq!(out.code, 0);
    f.join();
    let after = tcgetattr(&tty).unwrap();
    assert_eq!(
        (after.local_modes, after.input_modes, after.output_modes, after.control_modes),
        (before.local_modes, before.input_modes, before.output_modes, before.control_modes)
    );
}

/// A captured console log given as `--serial`: shown to its end, never written to.
#[test]
fn console_replays_a_captured_log() {
    let path = socket_path().with_extension("log");
    let wire = |seq: u16, msg: &Message| {
        let mut body = [0u8; MAX_BODY];
        let n = emit_message(seq, msg, &mut body).unwrap();
        let mut out = vec![0u8; 2048];
        let len = emit_apc(&body[..n], &mut out).unwrap();
        out.truncate(len);
        out
    };
    let mut log = b"[    0.000000] Linux version 6.1.0\r\n".to_vec();
    log.extend(wire(0, &hello()));
    log.extend_from_slice(b"Run /init as init process\r\n");
    log.extend(wire(1, &log_msg(1_000_000_000, LogSource::Keel, b"", b"ready")));
    log.extend(wire(3, &log_msg(1_100_000_000, LogSource::Keel, b"", b"after a gap")));
    log.extend_from_slice(b"~ # ");
    std::fs::write(&path, &log).unwrap();
    let out = keelctl(&["--serial", path.to_str().unwrap(), "--shared", "console"]);
    let after = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        out.stdout,
        "[    0.000000] Linux version 6.1.0\r\nRun /init as init process\r\n[    1.000000] keel: ready\n[    1.100000] keel: after a gap\n~ # "
    );
    assert!(out.stderr.contains("keelctl: 1 frame lost\n"), "{}", out.stderr);
    assert!(!out.stderr.contains("stty"), "{}", out.stderr);
    assert_eq!(out.code, 0);
    assert_eq!(after, log, "the log was written to");
}
