//! keelctl: the host-side client of keel's debug protocol (docs/keelctl.md, the protocol in
//! docs/protocol.md). An ordinary std program for the host; every byte on the wire is
//! encoded and decoded by the keel-proto crate, the code PID 1 itself uses.
//!
//! - `cli`: the command line;
//! - `transport`: unix socket, serial device, vsock; reader, signal and keyboard threads;
//! - `session`: frames in and out, hello, lost frames and records, shared-line text;
//! - `output`: human and JSON lines;
//! - `compile`: `check` and `compile`, keel-config's compiler on the host;
//! - `image`: `image`, a bootable initramfs (docs/image.md).
//!
//! Exit status: 0 done, 1 the request failed (ErrorReply; check, compile, image: bad input),
//! 2 usage, 3 no connection, no
//! answer or connection lost, 130 interrupted.
#![deny(unsafe_code)]

mod cli;
mod compile;
mod image;
mod output;
mod session;
mod transport;

use cli::{Command, Local, Options, Parsed};
use keel_proto::{EventKind, Message, ReplyBody};
use output::{EventRecord, LogRecord, ServiceRow, StatusInfo};
use session::{Session, Stop, TextMode};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const OK: i32 = 0;
const FAILED: i32 = 1;
const USAGE: i32 = 2;
const NO_CONNECTION: i32 = 3;
const INTERRUPTED: i32 = 130;

fn main() {
    let args: Result<Vec<String>, _> = std::env::args_os().skip(1).map(|a| a.into_string()).collect();
    let parsed = match args {
        Ok(args) => cli::parse(&args),
        Err(bad) => Err(format!("an argument is not UTF-8: {}", bad.to_string_lossy())),
    };
    let code = match parsed {
        Ok(Parsed::Help) => {
            print!("{}", cli::USAGE);
            OK
        }
        Ok(Parsed::Version) => {
            println!("keelctl {}", cli::VERSION);
            OK
        }
        Err(e) => {
            eprintln!("keelctl: {e}");
            eprint!("{}", cli::USAGE);
            USAGE
        }
        Ok(Parsed::Run(o)) => run(&o),
        Ok(Parsed::Local(Local::Check(file))) => compile::check(&file),
        Ok(Parsed::Local(Local::Compile { file, out })) => compile::compile(&file, &out),
        Ok(Parsed::Local(Local::Image(o))) => image::run(&o),
    };
    std::process::exit(code)
}

fn run(o: &Options) -> i32 {
    let conn = match transport::connect(&o.target) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("keelctl: cannot connect to {}: {e}", o.target);
            return NO_CONNECTION;
        }
    };
    let conn_replay = conn.replay;
    let (tx, rx) = transport::channel();
    transport::spawn_signal_thread(tx.clone());
    transport::spawn_reader(conn.reader, tx.clone());
    let writer = Arc::new(Mutex::new(conn.writer));
    let mut s = Session::new(writer.clone(), rx, o.shared, o.target.to_string());
    s.verbose = o.verbose;
    s.json = o.json;
    match &o.command {
        Command::Console => console(&mut s, writer, tx, conn_replay),
        cmd => request(&mut s, cmd, o.timeout),
    }
}

/// Exit status and message for a conversation that ended without its answer.
fn stopped(s: &mut Session, stop: Stop) -> i32 {
    s.flush_text();
    match stop {
        Stop::Timeout => s.warn(&format!("no answer from keel on {}", s.place)),
        Stop::Closed(None) => s.warn(&format!("connection to keel on {} closed", s.place)),
        Stop::Closed(Some(e)) => s.warn(&format!("connection to keel on {}: {e}", s.place)),
        Stop::Signal(n) => return 128 + n as i32,
        Stop::Quit => return INTERRUPTED,
    }
    NO_CONNECTION
}

fn request_message(cmd: &Command, nonce: u32) -> Message<'_> {
    match cmd {
        Command::Status => Message::Status,
        Command::Services => Message::Services,
        Command::Start(name) => Message::Start { name: name.as_bytes() },
        Command::Stop(name) => Message::Stop { name: name.as_bytes() },
        Command::Restart(name) => Message::Restart { name: name.as_bytes() },
        Command::Logs { follow, tail, service, previous } => {
            Message::Logs { tail: *tail, follow: *follow, service: service.as_bytes(), previous: *previous }
        }
        Command::Dmesg { follow, tail, previous } => Message::Dmesg { tail: *tail, follow: *follow, previous: *previous },
        Command::Events { follow, since } => Message::Events { since: *since, follow: *follow },
        Command::Power(cmd) => Message::Power { cmd: *cmd },
        Command::Ping | Command::Console => Message::Ping { nonce },
    }
}

fn nonce() -> u32 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    t.subsec_nanos() ^ (t.as_secs() as u32).rotate_left(16) ^ std::process::id()
}

/// One request and its answer (or, for -f, its stream until Ctrl-C).
fn request(s: &mut Session, cmd: &Command, timeout: Duration) -> i32 {
    let streams = matches!(cmd, Command::Logs { .. } | Command::Dmesg { .. } | Command::Events { .. });
    // Console text interleaved with a stream is shown with it; one-shot answers stay clean.
    s.text_mode = if streams { TextMode::Lines } else { TextMode::Drop };
    let (version, features) = match s.hello(timeout) {
        Ok(v) => v,
        Err(e) => return stopped(s, e),
    };
    let previous = matches!(cmd, Command::Logs { previous: true, .. } | Command::Dmesg { previous: true, .. });
    if previous && features & keel_proto::msg::features::PREVIOUS_BOOT == 0 {
        // It would ignore the appended flag and answer with this boot's records.
        s.warn(&format!("keel {} on {} does not serve the previous boot", String::from_utf8_lossy(&version), s.place));
        return FAILED;
    }
    let follow = cmd.follows();
    let nonce = nonce();
    let msg = request_message(cmd, nonce);
    let start = Instant::now();
    // Every frame the request went out in, and when. A damaged request is never answered,
    // so one that is safe to repeat (`Command::idempotent`) is sent again; the others are
    // sent once, and an answer may take the whole timeout.
    let tries = if cmd.idempotent() { 3 } else { 1 };
    let mut sent: Vec<(u16, Instant)> = Vec::new();
    // The frame keel answered (its later replies must name it), or that records came.
    let mut answered: Option<u16> = None;
    let mut records = false;
    let mut deadline = start + timeout;
    let mut rows: Vec<ServiceRow> = Vec::new();
    loop {
        let may_retry = answered.is_none() && !records && sent.len() < tries;
        let due = start + timeout.mul_f64(sent.len() as f64 / 3.0);
        if sent.is_empty() || (may_retry && Instant::now() >= due) {
            if !sent.is_empty() {
                s.note("no answer yet: sending the request again");
            }
            match s.send(&msg) {
                Ok(seq) => sent.push((seq, Instant::now())),
                Err(e) => return stopped(s, Stop::Closed(Some(e))),
            }
            continue;
        }
        let wait_until = if follow {
            None
        } else if may_retry {
            Some(deadline.min(due))
        } else {
            Some(deadline)
        };
        let frame = match s.recv(wait_until) {
            Ok(f) => f,
            Err(Stop::Timeout) if Instant::now() < deadline => continue,
            Err(Stop::Timeout) if !cmd.idempotent() && answered.is_none() => {
                s.flush_text();
                s.warn(&format!(
                    "no answer from keel on {} to {} (sent once, not repeated: it may have been done)",
                    s.place,
                    cmd.word()
                ));
                return NO_CONNECTION;
            }
            Err(Stop::Signal(n)) => {
                // On a serial line keel cannot see the client go: say so.
                if follow {
                    let _ = s.send(&Message::Cancel);
                }
                return stopped(s, Stop::Signal(n));
            }
            Err(e) => return stopped(s, e),
        };
        let m = match frame.message() {
            Ok(m) => m,
            Err(e) => {
                s.skip(&frame, e);
                continue;
            }
        };
        let ours = |req: u16| sent.iter().any(|&(q, _)| q == req) && answered.is_none_or(|a| a == req);
        let done = match m {
            Message::Reply { req, body } if ours(req) => {
                answered = Some(req);
                deadline = Instant::now() + timeout;
                let sent_at = sent.iter().find(|&&(q, _)| q == req).map_or(start, |&(_, t)| t);
                reply(s, cmd, body, &version, nonce, sent_at, &mut rows)
            }
            Message::ErrorReply { req, code, message } if ours(req) => {
                s.flush_text();
                let mut text = output::error_code_name(code).into_owned();
                if !message.is_empty() {
                    text = format!("{text}: {}", output::clean(message));
                }
                s.warn(&text);
                Some(FAILED)
            }
            Message::Log { boot_ns, source, stream, service, text }
                if matches!(cmd, Command::Logs { .. } | Command::Dmesg { .. }) =>
            {
                records = true;
                deadline = Instant::now() + timeout;
                let r = LogRecord { boot_ns, source, stream, service, text };
                let line = if s.json { output::log_json(&r) } else { output::log_line(&r) };
                s.print(&line);
                None
            }
            // The previous boot's stream begins with how it ended.
            Message::Event { boot_ns, event_seq, kind: kind @ EventKind::PreviousBoot, name, detail } if previous => {
                records = true;
                deadline = Instant::now() + timeout;
                let e = EventRecord { boot_ns, event_seq, kind, name, detail };
                let line = if s.json { output::event_json(&e) } else { output::previous_line(&e) };
                s.print(&line);
                None
            }
            Message::Event { boot_ns, event_seq, kind, name, detail } if matches!(cmd, Command::Events { .. }) => {
                records = true;
                deadline = Instant::now() + timeout;
                let e = EventRecord { boot_ns, event_seq, kind, name, detail };
                let line = if s.json { output::event_json(&e) } else { output::event_line(&e) };
                s.print(&line);
                None
            }
            Message::Reply { req, .. } | Message::ErrorReply { req, .. } => {
                s.note(&format!("skipping an answer to frame {req}, not to this request"));
                None
            }
            other => {
                s.common(&other);
                None
            }
        };
        if let Some(e) = s.stdout_failed.take() {
            if follow {
                let _ = s.send(&Message::Cancel);
            }
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                s.warn(&format!("stdout: {e}"));
            }
            return FAILED;
        }
        if let Some(code) = done {
            return code;
        }
    }
}

/// A Reply to this request: the exit status if it is the last one.
fn reply(
    s: &mut Session,
    cmd: &Command,
    body: ReplyBody,
    version: &[u8],
    nonce: u32,
    sent_at: Instant,
    rows: &mut Vec<ServiceRow>,
) -> Option<i32> {
    match (cmd, body) {
        (Command::Ping, ReplyBody::Pong { nonce: n }) if n == nonce => {
            let rtt = sent_at.elapsed();
            let line = if s.json { output::pong_json(version, rtt) } else { output::pong_line(version, rtt) };
            s.print(&line);
            Some(OK)
        }
        (Command::Status, ReplyBody::Status { uptime_ns, ready_ns, rss_kib, services, failed, config }) => {
            let st = StatusInfo { version, uptime_ns, ready_ns, rss_kib, services, failed, config };
            if s.json {
                s.print(&output::status_json(&st));
            } else {
                s.print_block(&output::status_lines(&st));
            }
            Some(OK)
        }
        (Command::Services, ReplyBody::ServiceEntry { name, state, pid, restarts }) => {
            let row = ServiceRow { name: name.to_vec(), state, pid, restarts };
            if s.json {
                s.print(&output::service_json(&row));
            }
            rows.push(row);
            None
        }
        (Command::Services, ReplyBody::End) => {
            if !s.json {
                s.print_block(&output::services_table(rows));
            }
            Some(OK)
        }
        (Command::Start(_) | Command::Stop(_) | Command::Restart(_) | Command::Power(_), ReplyBody::Ok) => {
            if s.json {
                s.print(&output::ok_json());
            } else if let Command::Power(p) = cmd {
                s.note(&format!("keel on {} accepted {}", s.place, p.name()));
            }
            Some(OK)
        }
        (Command::Logs { .. } | Command::Dmesg { .. } | Command::Events { .. }, ReplyBody::End) => {
            s.flush_text();
            Some(OK)
        }
        (_, body) => {
            s.note(&format!("skipping an unexpected reply {body:?}"));
            None
        }
    }
}

/// The shared line, live: text as it comes, records and events as lines, keystrokes to
/// the line; Ctrl-] quits. keel need not answer: the line is useful without it (a shell,
/// the kernel's boot messages). A captured log (`replay`) is shown to its end.
fn console(
    s: &mut Session,
    writer: transport::Writer,
    tx: std::sync::mpsc::Sender<transport::Input>,
    replay: bool,
) -> i32 {
    let mut term = transport::RawTerminal::enter();
    s.crlf = term.is_raw();
    s.text_mode = TextMode::Raw;
    s.warn(&format!("console on {}; Ctrl-] quits", s.place));
    transport::spawn_keyboard(writer, tx);
    let client = format!("keelctl {}", cli::VERSION);
    let code = match s.send(&Message::ClientHello { proto: keel_proto::PROTO, client: client.as_bytes() }) {
        Err(e) => Err(Stop::Closed(Some(e))),
        Ok(_) => loop {
            let frame = match s.recv(None) {
                Ok(f) => f,
                Err(e) => break Err(e),
            };
            match frame.message() {
                Ok(Message::Log { boot_ns, source, stream, service, text }) => {
                    let r = LogRecord { boot_ns, source, stream, service, text };
                    let line = if s.json { output::log_json(&r) } else { output::log_line(&r) };
                    s.print(&line);
                }
                Ok(Message::Event { boot_ns, event_seq, kind, name, detail }) => {
                    let e = EventRecord { boot_ns, event_seq, kind, name, detail };
                    let line = if s.json { output::event_json(&e) } else { output::event_line(&e) };
                    s.print(&line);
                }
                Ok(Message::Hello { keel_version, .. }) => {
                    s.note(&format!("keel {} on {}", String::from_utf8_lossy(keel_version), s.place))
                }
                Ok(m) => s.common(&m),
                Err(e) => s.skip(&frame, e),
            }
            if s.stdout_failed.is_some() {
                break Ok(FAILED);
            }
        },
    };
    term.restore();
    s.crlf = false;
    match code {
        Ok(code) => code,
        Err(Stop::Quit) => OK,
        Err(Stop::Closed(None)) if replay => {
            s.flush_text();
            OK
        }
        Err(e) => stopped(s, e),
    }
}
