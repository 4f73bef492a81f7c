//! Starting a service without libc: fork, set the child up, execve (`crate::child` reports
//! a failure before exec back, so the log says "exec /usr/bin/foo: ENOENT").

use super::spec::{Readiness, Spec};
use crate::sys;
use core::ffi::CStr;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::pipe::{pipe_with, PipeFlags};

/// A started service's descriptors, kept by the supervisor.
pub struct Spawned {
    pub pid: i32,
    /// Read end of the service's stdout+stderr (none with a tty).
    pub output: Option<OwnedFd>,
    /// Read end of the notification-fd pipe.
    pub ready_pipe: Option<OwnedFd>,
}

/// The step of the child's set-up that failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Pipe,
    Fork,
    SignalMask,
    Session,
    Tty,
    Stdio,
    ReadyFd,
    Chdir,
    Groups,
    Gid,
    Uid,
    Exec,
}

impl Step {
    const ALL: [Step; 12] = [
        Step::Pipe,
        Step::Fork,
        Step::SignalMask,
        Step::Session,
        Step::Tty,
        Step::Stdio,
        Step::ReadyFd,
        Step::Chdir,
        Step::Groups,
        Step::Gid,
        Step::Uid,
        Step::Exec,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::Pipe => "pipe",
            Step::Fork => "fork",
            Step::SignalMask => "signal mask",
            Step::Session => "setsid",
            Step::Tty => "open tty",
            Step::Stdio => "stdio",
            Step::ReadyFd => "notification fd",
            Step::Chdir => "chdir",
            Step::Groups => "setgroups",
            Step::Gid => "setgid",
            Step::Uid => "setuid",
            Step::Exec => "exec",
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SpawnError {
    pub step: Step,
    pub errno: Errno,
}

/// Most environment entries a service gets: its own, plus NOTIFY_SOCKET.
const ENV_MAX: usize = 18;

/// Start `spec`. `notify_socket` is the `NOTIFY_SOCKET=...` entry for sd_notify services.
pub fn spawn(spec: &Spec, notify_socket: Option<&CStr>) -> Result<Spawned, SpawnError> {
    let fail = |step| move |errno| SpawnError { step, errno };
    // Everything the child needs is prepared before fork: the child only makes syscalls.
    let mut argv = heapless::Vec::<*const u8, 18>::new();
    for arg in spec.argv.iter() {
        argv.push(arg.as_ptr().cast()).map_err(|_| fail(Step::Exec)(Errno::TOOBIG))?;
    }
    argv.push(core::ptr::null()).map_err(|_| fail(Step::Exec)(Errno::TOOBIG))?;
    let mut envp = heapless::Vec::<*const u8, ENV_MAX>::new();
    for var in spec.env.iter().chain(notify_socket) {
        envp.push(var.as_ptr().cast()).map_err(|_| fail(Step::Exec)(Errno::TOOBIG))?;
    }
    envp.push(core::ptr::null()).map_err(|_| fail(Step::Exec)(Errno::TOOBIG))?;

    let output = match spec.tty {
        Some(_) => None,
        None => Some(pipe_with(PipeFlags::CLOEXEC).map_err(fail(Step::Pipe))?),
    };
    let ready = match spec.ready {
        Readiness::Fd(_) => Some(pipe_with(PipeFlags::CLOEXEC).map_err(fail(Step::Pipe))?),
        _ => None,
    };
    let setup = || {
        let mut step = Step::SignalMask;
        let Err(errno) = child(spec, output.as_ref().map(|p| p.1.as_fd()), ready.as_ref().map(|p| p.1.as_fd()), &argv, &envp, &mut step);
        crate::child::Failure { step: step as u8, errno }
    };
    let (pid, failure) = crate::child::spawn(setup, |_| 127).map_err(fail(Step::Fork))?;
    if let Some(f) = failure {
        // The child has exited with 127; the reaper collects it.
        let step = Step::ALL.get(f.step as usize).copied().unwrap_or(Step::Exec);
        return Err(SpawnError { step, errno: f.errno });
    }
    let nonblocking = |fd: OwnedFd| {
        let _ = rustix::fs::fcntl_setfl(crate::sys::fd::borrow(&fd), rustix::fs::OFlags::NONBLOCK);
        fd
    };
    Ok(Spawned { pid, output: output.map(|(r, _)| nonblocking(r)), ready_pipe: ready.map(|(r, _)| nonblocking(r)) })
}

/// In the child: set up, then exec. Returns only on failure, `step` naming where (one
/// variable rather than a `map_err` per call: this runs in every service's child).
fn child(
    spec: &Spec,
    output: Option<BorrowedFd>,
    ready: Option<BorrowedFd>,
    argv: &[*const u8],
    envp: &[*const u8],
    step: &mut Step,
) -> Result<core::convert::Infallible, Errno> {
    // PID 1 blocks the signals it reads from its signalfd; a service starts with none blocked.
    *step = Step::SignalMask;
    sys::set_signal_mask_to(sys::SigSet(0))?;
    *step = Step::Session;
    rustix::process::setsid()?;
    use crate::sys::fd::open;
    use rustix::fs::{Mode, OFlags};
    match (spec.tty, output) {
        (Some(tty), _) => {
            *step = Step::Tty;
            // Non-blocking open: a serial line without carrier must not hang the child.
            let fd = open(tty, OFlags::RDWR | OFlags::NOCTTY | OFlags::NONBLOCK, Mode::empty())?;
            rustix::fs::fcntl_setfl(crate::sys::fd::borrow(&fd), OFlags::empty())?;
            // A session leader's first terminal: job control for shells.
            rustix::process::ioctl_tiocsctty(&fd)?;
            *step = Step::Stdio;
            dup_stdio(fd.as_fd(), fd.as_fd(), fd.as_fd())?;
        }
        (None, Some(out)) => {
            *step = Step::Stdio;
            let null = open(c"/dev/null", OFlags::RDWR, Mode::empty())?;
            dup_stdio(null.as_fd(), out, out)?;
        }
        (None, None) => {}
    }
    if let (Readiness::Fd(n), Some(fd)) = (spec.ready, ready) {
        *step = Step::ReadyFd;
        sys::dup_to(fd, n as i32)?;
    }
    *step = Step::Chdir;
    rustix::process::chdir(spec.cwd)?;
    if spec.uid != 0 || spec.gid != 0 {
        use rustix::process::{Gid, Uid};
        *step = Step::Groups;
        rustix::thread::set_thread_groups(&[])?;
        let gid = Gid::from_raw(spec.gid);
        let uid = Uid::from_raw(spec.uid);
        *step = Step::Gid;
        rustix::thread::set_thread_res_gid(gid, gid, gid)?;
        *step = Step::Uid;
        rustix::thread::set_thread_res_uid(uid, uid, uid)?;
    }
    *step = Step::Exec;
    let program = spec.argv.first().ok_or(Errno::NOENT)?;
    Err(sys::execve(program, argv, envp))
}

fn dup_stdio(stdin: BorrowedFd, stdout: BorrowedFd, stderr: BorrowedFd) -> Result<(), Errno> {
    sys::dup_to(stdin, 0)?;
    sys::dup_to(stdout, 1)?;
    sys::dup_to(stderr, 2)
}
