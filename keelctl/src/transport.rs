//! The byte channel to keel: a unix socket, a serial device, vsock, or vsock through a
//! hybrid-vsock unix socket (a vhost-user backend's host side). Each gives a reader
//! (moved to a thread that turns reads into `Input`s on a channel, so the main loop can wait
//! with a timeout) and a writer (shared, so that console keystrokes and frames never
//! interleave inside a write).

use crate::cli::Target;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};

/// What the main loop waits for.
pub enum Input {
    /// Bytes from keel.
    Data(Vec<u8>),
    /// The connection ended: end of file, or an error.
    Closed(Option<io::Error>),
    /// SIGINT, SIGTERM or SIGHUP (the number).
    Signal(u32),
    /// Ctrl-] on the console.
    Quit,
}

pub type Writer = Arc<Mutex<Box<dyn Write + Send>>>;

/// An open channel, its reader not started yet.
pub struct Conn {
    pub reader: Box<dyn Read + Send>,
    pub writer: Box<dyn Write + Send>,
    /// A regular file given as `--serial` (a captured console log): read to its end,
    /// nothing written to it.
    pub replay: bool,
}

pub fn connect(target: &Target) -> io::Result<Conn> {
    match target {
        Target::Unix(path) => {
            let s = UnixStream::connect(path)?;
            Ok(Conn { reader: Box::new(s.try_clone()?), writer: Box::new(s), replay: false })
        }
        Target::Serial { dev, .. } if std::fs::metadata(dev).is_ok_and(|m| m.is_file()) => {
            let f = std::fs::File::open(dev)?;
            Ok(Conn { reader: Box::new(f), writer: Box::new(io::sink()), replay: true })
        }
        Target::Serial { dev, baud } => {
            let f = open_serial(dev)?;
            if let Err(e) = set_raw_line(&f, *baud) {
                // A FIFO or a pipe-like device: still worth reading.
                eprintln!("keelctl: {}: cannot set the line raw at {baud} baud: {e}; using it as it is", dev.display());
            }
            Ok(Conn { reader: Box::new(f.try_clone()?), writer: Box::new(f), replay: false })
        }
        Target::Vsock { cid, port } => {
            let s = vsock::connect(*cid, *port)?;
            Ok(Conn { reader: Box::new(s.try_clone()?), writer: Box::new(s), replay: false })
        }
        Target::VsockUnix { path, port } => {
            let s = hybrid_vsock_connect(path, *port, HYBRID_HANDSHAKE_TIMEOUT)?;
            Ok(Conn { reader: Box::new(s.try_clone()?), writer: Box::new(s), replay: false })
        }
    }
}

/// The device without waiting for a carrier (O_NONBLOCK; `CLOCAL` set below makes that
/// last) and without making it our controlling terminal; then blocking again for the reader.
fn open_serial(dev: &Path) -> io::Result<File> {
    use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
    use std::os::unix::fs::OpenOptionsExt;
    let flags = (OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32;
    let f = OpenOptions::new().read(true).write(true).custom_flags(flags).open(dev)?;
    fcntl_setfl(&f, fcntl_getfl(&f)? - OFlags::NONBLOCK)?;
    Ok(f)
}

/// What `stty raw -echo clocal BAUD` does: bytes as they are both ways, 8N1 without flow
/// control, modem lines ignored. The settings stay with the port.
fn set_raw_line(f: &File, baud: u32) -> io::Result<()> {
    use rustix::termios::{tcgetattr, tcsetattr, ControlModes, OptionalActions};
    let mut t = tcgetattr(f)?;
    t.make_raw();
    t.control_modes |= ControlModes::CLOCAL | ControlModes::CREAD;
    t.set_speed(baud)?;
    tcsetattr(f, OptionalActions::Now, &t)?;
    Ok(())
}

/// How long the backend may take to say OK: it asks the guest first (under TCG a slow
/// guest), and a guest without a vsock driver never answers. Not `--timeout`, which counts
/// keel's answers, as for AF_VSOCK, whose connect timeout is the kernel's.
pub const HYBRID_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The host side of a "hybrid vsock" (Firecracker, cloud-hypervisor, rust-vmm's
/// vhost-device-vsock): connect to the backend's unix socket at `path`, send
/// `CONNECT <port>\n`, read its `OK <hostport>\n`; the stream is then the guest's `port`.
/// A backend closes the socket when the guest refuses (nothing listens on `port`).
pub fn hybrid_vsock_connect(path: &Path, port: u32, timeout: std::time::Duration) -> io::Result<UnixStream> {
    let mut s = UnixStream::connect(path)?;
    s.write_all(format!("CONNECT {port}\n").as_bytes())?;
    s.set_read_timeout(Some(timeout))?;
    // One byte at a time: what follows the newline is keel's (its Hello), not ours to take.
    let mut line = Vec::new();
    loop {
        let mut b = [0u8; 1];
        match s.read(&mut b) {
            Ok(0) => {
                let what = if line.is_empty() { String::new() } else { format!(" after {:?}", lossy(&line)) };
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("the vsock backend closed the connection{what}: nothing listens on guest port {port}?"),
                ));
            }
            Ok(_) if b[0] == b'\n' => break,
            Ok(_) if line.len() >= 64 => {
                return Err(bad_answer(&line));
            }
            Ok(_) => line.push(b[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer to CONNECT {port} from the vsock backend within {} s", timeout.as_secs_f64()),
                ));
            }
            Err(e) => return Err(e),
        }
    }
    let host_port = line.strip_prefix(b"OK ").and_then(|n| std::str::from_utf8(n).ok()?.trim_end().parse::<u32>().ok());
    if host_port.is_none() {
        return Err(bad_answer(&line));
    }
    s.set_read_timeout(None)?;
    Ok(s)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn bad_answer(line: &[u8]) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("the vsock backend answered {:?}, not OK PORT", lossy(line)))
}

/// Move the reader to a thread that forwards what it reads to `tx`, then `Closed`.
pub fn spawn_reader(mut reader: Box<dyn Read + Send>, tx: Sender<Input>) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        loop {
            let input = match reader.read(&mut buf) {
                Ok(0) => Input::Closed(None),
                Ok(n) => Input::Data(buf[..n].to_vec()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Input::Closed(Some(e)),
            };
            let last = matches!(input, Input::Closed(_));
            if tx.send(input).is_err() || last {
                return;
            }
        }
    });
}

/// SIGINT, SIGTERM and SIGHUP as `Input::Signal`, so that a follow can send Cancel (on a
/// serial line keel cannot see the client go) and the console can restore the terminal.
/// signal-hook's handler only writes to a pipe; a thread reads it. A second signal exits
/// at once (130).
pub fn spawn_signal_thread(tx: Sender<Input>) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM]) else {
        return; // default behaviour: the signal ends keelctl
    };
    std::thread::spawn(move || {
        for (seen, signo) in signals.forever().enumerate() {
            if seen > 0 {
                std::process::exit(130);
            }
            let _ = tx.send(Input::Signal(signo.unsigned_abs()));
        }
    });
}

/// Writes one whole frame (or a run of keystrokes) under the lock.
pub fn write_all(w: &Writer, bytes: &[u8]) -> io::Result<()> {
    let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
    w.write_all(bytes)?;
    w.flush()
}

/// AF_VSOCK through rustix: std has no vsock, and rustix (1.1.6) has the address family
/// (`AddressFamily::VSOCK`) but no address type (rustix issue #1070), so `struct
/// sockaddr_vm` is defined here.
mod vsock {
    use rustix::net::addr::{SocketAddrArg, SocketAddrLen, SocketAddrOpaque};
    use rustix::net::{AddressFamily, SocketType};
    use std::fs::File;
    use std::io;

    /// `struct sockaddr_vm` (linux/vm_sockets.h), 16 bytes.
    #[repr(C)]
    struct SockaddrVm {
        family: u16,
        reserved1: u16,
        port: u32,
        cid: u32,
        flags: u8,
        zero: [u8; 3],
    }

    // SAFETY: `f` gets a pointer to this live, fully initialized repr(C) struct and its exact
    // size, the layout the kernel expects for AF_VSOCK.
    #[allow(unsafe_code)]
    unsafe impl SocketAddrArg for SockaddrVm {
        unsafe fn with_sockaddr<R>(&self, f: impl FnOnce(*const SocketAddrOpaque, SocketAddrLen) -> R) -> R {
            f((self as *const Self).cast(), core::mem::size_of::<Self>() as SocketAddrLen)
        }
    }

    // linux/vm_sockets.h: the kernel reads exactly this many bytes.
    const _: () = assert!(core::mem::size_of::<SockaddrVm>() == 16);

    /// A connected stream: a `File` reads and writes a socket as any descriptor.
    pub fn connect(cid: u32, port: u32) -> io::Result<File> {
        let fd = rustix::net::socket(AddressFamily::VSOCK, SocketType::STREAM, None)?;
        let addr =
            SockaddrVm { family: AddressFamily::VSOCK.as_raw(), reserved1: 0, port, cid, flags: 0, zero: [0; 3] };
        rustix::net::connect(&fd, &addr)?;
        Ok(File::from(fd))
    }
}

/// Run while the console is up: the local terminal raw (keystrokes go to the line as they
/// are typed, Ctrl-C included), restored by `restore` or on drop.
pub struct RawTerminal {
    saved: Option<rustix::termios::Termios>,
}

impl RawTerminal {
    /// Raw mode if stdin is a terminal (`stty raw -echo`: cfmakeraw).
    pub fn enter() -> RawTerminal {
        use rustix::termios::{tcgetattr, tcsetattr, OptionalActions};
        let stdin = io::stdin();
        let Ok(saved) = tcgetattr(&stdin) else {
            return RawTerminal { saved: None };
        };
        let mut raw = saved.clone();
        raw.make_raw();
        if tcsetattr(&stdin, OptionalActions::Now, &raw).is_err() {
            return RawTerminal { saved: None };
        }
        RawTerminal { saved: Some(saved) }
    }

    pub fn is_raw(&self) -> bool {
        self.saved.is_some()
    }

    pub fn restore(&mut self) {
        if let Some(saved) = self.saved.take() {
            let _ = rustix::termios::tcsetattr(io::stdin(), rustix::termios::OptionalActions::Now, &saved);
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        self.restore();
    }
}

/// Move stdin to a thread that writes what is typed to the line, and says `Quit` at Ctrl-]
/// (0x1d). At the end of stdin it stops forwarding; the console goes on.
pub fn spawn_keyboard(writer: Writer, tx: Sender<Input>) {
    std::thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        let mut buf = [0u8; 256];
        loop {
            let n = match stdin.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            let typed = &buf[..n];
            let quit = typed.iter().position(|&b| b == 0x1d);
            let send = &typed[..quit.unwrap_or(n)];
            if !send.is_empty() && write_all(&writer, send).is_err() {
                return;
            }
            if quit.is_some() {
                let _ = tx.send(Input::Quit);
                return;
            }
        }
    });
}

/// A channel for `Input`s.
pub fn channel() -> (Sender<Input>, Receiver<Input>) {
    std::sync::mpsc::channel()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::os::unix::net::UnixListener;
    use std::path::PathBuf;
    use std::time::Duration;

    /// A fake hybrid-vsock backend: one connection; `answer` gets the line it read
    /// (checked to be `CONNECT 1024\n`) and the stream.
    fn backend(
        name: &str,
        answer: impl FnOnce(&mut UnixStream) + Send + 'static,
    ) -> (PathBuf, std::thread::JoinHandle<()>) {
        let path = std::env::temp_dir().join(format!("keelctl-hybrid-{}-{name}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut line = Vec::new();
            std::io::BufReader::new(&mut s).read_until(b'\n', &mut line).unwrap();
            assert_eq!(line, b"CONNECT 1024\n");
            answer(&mut s);
        });
        (path, server)
    }

    fn finish(path: PathBuf, server: std::thread::JoinHandle<()>) {
        let _ = std::fs::remove_file(&path);
        if let Err(e) = server.join() {
            std::panic::resume_unwind(e);
        }
    }

    #[test]
    fn handshake_then_the_stream_is_the_guests() {
        let (path, server) = backend("ok", |s| {
            // keel's first bytes may come in the same segment as the OK.
            s.write_all(b"OK 1234\nhello").unwrap();
            let mut got = [0u8; 4];
            s.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"ping");
        });
        let mut s = hybrid_vsock_connect(&path, 1024, Duration::from_secs(10)).unwrap();
        let mut got = [0u8; 5];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello", "the bytes after OK belong to the stream");
        s.write_all(b"ping").unwrap();
        finish(path, server);
    }

    #[test]
    fn backend_closes_when_the_guest_refuses() {
        let (path, server) = backend("refused", |_| {});
        let e = hybrid_vsock_connect(&path, 1024, Duration::from_secs(10)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        assert!(e.to_string().contains("closed the connection: nothing listens on guest port 1024"), "{e}");
        finish(path, server);
    }

    #[test]
    fn anything_but_ok_is_an_error() {
        for (name, answer) in [("err", &b"FAILURE\n"[..]), ("noport", b"OK\n"), ("badport", b"OK x\n")] {
            let (path, server) = backend(name, move |s| s.write_all(answer).unwrap());
            let e = hybrid_vsock_connect(&path, 1024, Duration::from_secs(10)).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{name}");
            assert!(e.to_string().contains("not OK PORT"), "{e}");
            finish(path, server);
        }
        // A line cut by the close is a refusal that says what came.
        let (path, server) = backend("cut", |s| s.write_all(b"OK 12").unwrap());
        let e = hybrid_vsock_connect(&path, 1024, Duration::from_secs(10)).unwrap_err();
        assert!(e.to_string().contains("closed the connection after \"OK 12\""), "{e}");
        finish(path, server);
        // Endless garbage without a newline is cut off.
        let (path, server) = backend("long", |s| {
            let _ = s.write_all(&[b'x'; 200]);
        });
        let e = hybrid_vsock_connect(&path, 1024, Duration::from_secs(10)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        finish(path, server);
    }

    #[test]
    fn a_silent_backend_times_out() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (path, server) = backend("silent", move |_| {
            let _ = rx.recv_timeout(Duration::from_secs(10));
        });
        let start = std::time::Instant::now();
        let e = hybrid_vsock_connect(&path, 1024, Duration::from_millis(200)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(e.to_string().contains("no answer to CONNECT 1024"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(5));
        drop(tx);
        finish(path, server);
    }

    #[test]
    fn no_backend_socket() {
        let path = std::env::temp_dir().join(format!("keelctl-hybrid-{}-none.sock", std::process::id()));
        let e = hybrid_vsock_connect(&path, 1024, Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
