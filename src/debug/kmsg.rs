//! The kernel's log, /dev/kmsg: one record per read(2), `PRI,SEQ,USEC,FLAGS;text\n` and
//! then dictionary lines (` KEY=VALUE\n`).

use rustix::fd::OwnedFd;
use rustix::io::Errno;

/// Open /dev/kmsg (non-blocking) and count how many records to skip for the last `tail`.
pub fn open(tail: u16) -> Result<(OwnedFd, u32), Errno> {
    use rustix::fs::{open, Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let counter = open(c"/dev/kmsg", flags, Mode::empty())?;
    let mut buf = [0u8; 1024];
    let mut total = 0u32;
    loop {
        match rustix::io::read(&counter, &mut buf) {
            Ok(_) => total += 1,
            Err(Errno::PIPE) => continue,
            Err(_) => break,
        }
    }
    Ok((open(c"/dev/kmsg", flags, Mode::empty())?, total.saturating_sub(tail as u32)))
}

/// `PRI,SEQ,USEC,FLAGS;text\n…`: the time in ns and the text (continuation lines dropped).
pub fn parse(record: &[u8]) -> (u64, &[u8]) {
    let Some(semi) = memchr::memchr(b';', record) else { return (0, record) };
    let usec = record[..semi].split(|&b| b == b',').nth(2).and_then(crate::config::cmdline::parse_u64).unwrap_or(0);
    let text = &record[semi + 1..];
    let text = &text[..memchr::memchr(b'\n', text).unwrap_or(text.len())];
    (usec.saturating_mul(1000), text)
}

/// Why /dev/kmsg cannot be followed, for the ErrorReply.
pub fn errno_text(e: Errno) -> &'static str {
    match e {
        Errno::NOENT => "no /dev/kmsg",
        Errno::ACCESS | Errno::PERM => "/dev/kmsg: permission denied",
        _ => "/dev/kmsg cannot be read",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records() {
        assert_eq!(parse(b"6,339,5140900,-;NET: Registered protocol family 10\n"), (5_140_900_000, &b"NET: Registered protocol family 10"[..]));
        assert_eq!(parse(b"4,1,2,-;line\n SUBSYSTEM=acpi\n"), (2000, &b"line"[..]));
        assert_eq!(parse(b"garbage"), (0, &b"garbage"[..]));
        assert_eq!(parse(b"x,y;t"), (0, &b"t"[..]));
    }
}
