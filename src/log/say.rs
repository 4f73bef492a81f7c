//! Console lines from a template whose `%`s are filled from `args` in order, for every room
//! whose line holds only text, numbers and errnos. One small call per line: the literal text
//! is one static string, only what varies is passed; a ufmt `info!` costs a call per piece.

use rustix::io::Errno;

pub enum Part<'a> {
    /// Text as log::Bytes shows it (control bytes as `?`).
    T(&'a [u8]),
    /// A decimal number.
    N(u64),
    /// A signed decimal number (pids, exit codes).
    I(i64),
    /// An errno, by name where keel knows it.
    E(Errno),
}

/// `say(b"root: no device % after % s", &[T(device), N(30)])`; a `%` with no argument
/// left is shown as it is.
pub fn say(template: &[u8], args: &[Part]) {
    let mut line = crate::log::begin();
    fill(&mut line, template, args);
    crate::log::emit(line);
}

/// `fatal!` by template: print `fatal: ` and the line, then act per `keel.panic=`.
#[cfg_attr(not(all(not(test), feature = "rt")), allow(dead_code))] // its callers are PID 1 only
pub fn die(template: &[u8], args: &[Part]) -> ! {
    let mut line = crate::log::begin();
    line.push_bytes(b"fatal: ");
    fill(&mut line, template, args);
    crate::fatal::die(line)
}

pub(crate) fn fill(line: &mut crate::log::Line, template: &[u8], args: &[Part]) {
    let mut args = args.iter();
    for &b in template {
        let arg = if b == b'%' { args.next() } else { None };
        match arg {
            // As log::Bytes shows it: control bytes as `?`, and non-ASCII too unless UTF-8.
            Some(Part::T(text)) => {
                let _ = ufmt::uwrite!(line, "{}", crate::log::Bytes(text));
            }
            Some(Part::N(n)) => crate::log::push_padded(line, *n, 0, b' '),
            Some(Part::I(n)) => {
                if *n < 0 {
                    line.push_bytes(b"-");
                }
                crate::log::push_padded(line, n.unsigned_abs(), 0, b' ');
            }
            Some(Part::E(e)) => {
                let _ = ufmt::uwrite!(line, "{}", crate::log::Errno(*e));
            }
            None => line.push_bytes(&[b]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_filled_in_order() {
        let mut line = crate::log::Line::new();
        fill(&mut line, b"mount %: % after % s: %; 100%", &[Part::T(b"data\x1b"), Part::T(b"UUID=x"), Part::N(30), Part::E(Errno::NOENT)]);
        assert_eq!(line.as_bytes(), b"mount data?: UUID=x after 30 s: ENOENT; 100%");
    }

    #[test]
    fn signed_numbers_are_shown_as_ufmt_shows_them() {
        for n in [0i32, 7, -1, i32::MIN, i32::MAX] {
            let mut line = crate::log::Line::new();
            fill(&mut line, b"pid %", &[Part::I(n.into())]);
            let mut want = crate::log::Line::new();
            ufmt::uwrite!(want, "pid {}", n).unwrap();
            assert_eq!(line.as_bytes(), want.as_bytes());
        }
    }
}
