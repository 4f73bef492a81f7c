//! The end of the power sequence — sync, unmount everything, sync — in a child process: a
//! slow or dead disk blocks only the child, and PID 1 keeps serving (debug clients, a
//! second press, the panic policy) while `Shutdown` decides how long to wait. The child
//! names each step as it begins on a pipe (`sync`, `unmount /mnt`), so PID 1 sees steps
//! complete and can say what it abandons. Exiting is its "all done".

use crate::info;
use crate::log::{Bytes, Line};
use crate::log::say::{say, Part::E};
use rustix::fd::{BorrowedFd, OwnedFd};

/// The flush child as PID 1 sees it.
pub struct FlushChild {
    /// 0 if it could not be forked (then PID 1 flushed by itself).
    pub pid: i32,
    /// Read end of the step pipe, non-blocking.
    steps: Option<OwnedFd>,
    /// The step under way: the last line the child wrote.
    current: heapless::Vec<u8, STEP_MAX>,
    pub exited: bool,
}

/// Longest step line kept (a longer mount point is cut).
const STEP_MAX: usize = 96;

impl FlushChild {
    /// Fork the child. Should fork fail, flush here (blocking, as before there was a
    /// child): better late than never synced.
    pub fn start(owns_mounts: bool) -> FlushChild {
        use rustix::pipe::{pipe_with, PipeFlags};
        let pipe = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK).ok();
        let mut child = FlushChild { pid: 0, steps: None, current: heapless::Vec::new(), exited: true };
        match crate::sys::fork() {
            Ok(0) => {
                flush(owns_mounts, pipe.as_ref().map(|(_, w)| crate::sys::fd::borrow(w)));
                crate::sys::exit(0)
            }
            Ok(pid) => (child.pid, child.exited, child.steps) = (pid, false, pipe.map(|(r, _)| r)),
            Err(e) => {
                say(b"fork: %; flushing in PID 1", &[E(e)]);
                flush(owns_mounts, None);
            }
        }
        child
    }

    /// Read the steps the child has begun; true if there was one (so the one before ended).
    pub fn poll(&mut self) -> bool {
        let Some(fd) = &self.steps else { return false };
        let mut buf = [0u8; 512];
        let mut stepped = false;
        while let Ok(n @ 1..) = rustix::io::read(crate::sys::fd::borrow(fd), &mut buf) {
            let text = &buf[..n.min(buf.len())];
            let whole = text.strip_suffix(b"\n").unwrap_or(text);
            let last = whole.rsplit(|&b| b == b'\n').next().unwrap_or(whole);
            self.current.clear();
            let _ = self.current.extend_from_slice(&last[..last.len().min(STEP_MAX)]);
            stepped = true;
        }
        stepped
    }

    /// The flush did not finish (`why`): say what is left behind.
    pub fn abandon(&self, why: &str, pending_kib: Option<u64>) {
        info!("flush abandoned ({}): {} unfinished, {} not written", why, Bytes(&self.current), Megabytes(pending_kib));
    }
}

/// The child's work. Each step is named before it begins.
fn flush(owns_mounts: bool, steps: Option<BorrowedFd<'_>>) {
    let begin = |parts: &[&[u8]]| {
        let mut line = Line::new();
        parts.iter().for_each(|p| line.push_bytes(&p[..p.len().min(STEP_MAX)]));
        if let Some(fd) = steps {
            // One write of at most PIPE_BUF bytes: PID 1 reads whole lines.
            let _ = rustix::io::write(fd, &line.finish());
        }
    };
    begin(&[b"sync"]);
    rustix::fs::sync();
    if !owns_mounts {
        return say(b"in a PID namespace: mounts are left to the container runtime", &[]);
    }
    crate::power::unmount::unmount_all(|mount_point| begin(&[b"unmount ", mount_point]));
    begin(&[b"sync"]);
    rustix::fs::sync();
}

/// KiB shown as decimal megabytes with one decimal: `12.3 MB` (`? MB`: unknown).
pub struct Megabytes(pub Option<u64>);

impl ufmt::uDisplay for Megabytes {
    fn fmt<W: ufmt::uWrite + ?Sized>(&self, f: &mut ufmt::Formatter<'_, W>) -> Result<(), W::Error> {
        match self.0 {
            Some(kib) => {
                let tenths = kib.saturating_mul(1024) / 100_000;
                ufmt::uwrite!(f, "{}.{} MB", tenths / 10, tenths % 10)
            }
            None => f.write_str("? MB"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn megabytes() {
        let shown = |kib| {
            let mut l = Line::new();
            ufmt::uwrite!(l, "{}", Megabytes(kib)).unwrap();
            String::from_utf8(l.as_bytes().to_vec()).unwrap()
        };
        assert_eq!(shown(Some(0)), "0.0 MB");
        assert_eq!(shown(Some(97)), "0.0 MB");
        assert_eq!(shown(Some(98)), "0.1 MB");
        assert_eq!(shown(Some(12_012)), "12.3 MB");
        assert_eq!(shown(Some(20_480)), "20.9 MB");
        assert_eq!(shown(Some(u64::MAX)), "18446744073709.5 MB");
        assert_eq!(shown(None), "? MB");
    }

    #[test]
    fn the_child_reports_its_steps_and_the_parent_keeps_the_last() {
        use rustix::pipe::{pipe_with, PipeFlags};
        let (r, w) = pipe_with(PipeFlags::NONBLOCK).unwrap();
        let mut child = FlushChild { pid: 1, steps: Some(r), current: heapless::Vec::new(), exited: false };
        assert!(!child.poll(), "nothing written yet");
        rustix::io::write(&w, b"sync\n").unwrap();
        assert!(child.poll());
        assert_eq!(&child.current[..], b"sync");
        rustix::io::write(&w, b"unmount /mnt\n").unwrap();
        rustix::io::write(&w, b"unmount /mnt/my\\040disk\n").unwrap();
        assert!(child.poll());
        assert_eq!(&child.current[..], b"unmount /mnt/my\\040disk");
        assert!(!child.poll());
        rustix::io::write(&w, &[b'x'; 200]).unwrap();
        assert!(child.poll());
        assert_eq!(child.current.len(), STEP_MAX, "a long line is cut, not a panic");
        drop(w);
        assert!(!child.poll(), "EOF is not a step");
    }
}
