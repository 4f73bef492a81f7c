//! Starting a child that must exec: fork, run the child's set-up, and learn whether exec
//! succeeded. A failure before or at exec (which step, which errno) comes back over a
//! close-on-exec pipe, so the parent can name it instead of seeing a mystery exit code.
//! Used by the services and by container mode.

use rustix::io::Errno;
use rustix::pipe::{pipe_with, PipeFlags};

/// What went wrong in the child: a step number the caller defines, and the errno.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub step: u8,
    pub errno: Errno,
}

/// Fork. The child runs `setup_and_exec`, which returns only on failure; the failure is
/// reported and the child exits with `exit_code`. The parent gets the pid and, once exec
/// has happened or failed, the failure if there was one (that child is left to the reaper).
pub fn spawn(setup_and_exec: impl FnOnce() -> Failure, exit_code: impl FnOnce(&Failure) -> i32) -> Result<(i32, Option<Failure>), Errno> {
    let (report_r, report_w) = pipe_with(PipeFlags::CLOEXEC)?;
    let pid = crate::sys::fork()?;
    if pid == 0 {
        drop(report_r);
        let failure = setup_and_exec();
        let errno = failure.errno.raw_os_error() as u16;
        let _ = rustix::io::write(crate::sys::fd::borrow(&report_w), &[failure.step, 0, errno as u8, (errno >> 8) as u8]);
        crate::sys::exit(exit_code(&failure));
    }
    drop(report_w);
    let mut report = [0u8; 4];
    let mut got = 0;
    // EOF (0 bytes) means the exec succeeded and closed the pipe.
    while got < report.len() {
        match rustix::io::read(crate::sys::fd::borrow(&report_r), &mut report[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::INTR) => continue,
            Err(_) => break,
        }
    }
    let failure = (got == report.len())
        .then(|| Failure { step: report[0], errno: Errno::from_raw_os_error(report[2] as i32 | (report[3] as i32) << 8) });
    Ok((pid, failure))
}
