//! modules.alias: which modules drive a device, from its modalias, as modprobe decides.
//!
//! depmod writes one `alias PATTERN MODULE` line for every alias a module declares
//! (`alias pci:v00001AF4d00001042sv*sd*bc*sc*i* virtio_pci`), and modprobe (libkmod) looks a
//! modalias up in the index it builds from them, modules.alias.bin. What that lookup does:
//! - both the pattern (depmod, output_aliases_bin) and the modalias (kmod_module_new_from_lookup)
//!   are normalized by alias_normalize: `-` becomes `_` outside `[...]`, and a `]` without
//!   `[` or an unclosed `[` makes the alias (or the lookup) invalid: `normalize`;
//! - the index is a trie: the bytes before the pattern's first `*`, `?` or `[` compare as
//!   they are, and the rest goes to fnmatch(3) with no flags against the rest of the
//!   modalias (libkmod-index.c, index_searchwild): `kmod_matches`;
//! - every module with a matching alias is loaded, each once.
//!
//! `fnmatch` is glibc's (2.36, Debian 12's, which modprobe uses) in the C locale: `*`, `?`,
//! `[...]` with ranges and `!` or `^` negation, and `\` escapes, with glibc's answers for
//! the malformed cases too (tested against glibc itself). Not `[:class:]`, `[=c=]` nor
//! `[.c.]` (3 KB of PID 1 for what no modules.alias holds): a set with one never matches.
//! It is iterative: on a mismatch only the last `*` takes one more byte, which is enough
//! for glob patterns (an earlier `*` could only leave less text for what follows), so a
//! match is at most pattern × text steps; a work limit bounds the pathological rest.
//!
//! `AliasMatcher` is fed modules.alias one line at a time (streamed like modules.dep:
//! Debian 12's is 1.3 MB, 26k lines) against a fixed set of modaliases.

use super::{ByteSet, SetError};
use super::coldplug::MAX_DEVICES;
use crate::boot::modules::{names_equal, trim, valid_name, words};

/// Most modules one match collects.
pub const MAX_FOUND: usize = 128;
/// Bytes for their names (module names are at most 55 bytes).
pub const FOUND_BYTES: usize = 4096;
/// Longest pattern `normalize` copies (a modules.alias line is at most `modules::READ_BUF`).
pub const MAX_PATTERN: usize = crate::boot::modules::READ_BUF;
/// Steps one `fnmatch` may take before it answers no match. Debian 12's modules.alias
/// against real modaliases (700-byte cpu ones included) takes at most about 600; only
/// patterns made to be slow (many unclosed `[` after a `*`) come near.
pub const WORK_LIMIT: u32 = 1 << 20;

/// Why a modules.alias line was not understood.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The first word is not `alias`.
    NotAlias,
    MissingPattern,
    MissingModule,
    /// More words after the module.
    TrailingWords,
    /// The pattern has a control or non-ASCII byte.
    BadPattern,
    /// Not a module name (`modules::valid_name`).
    BadModule,
}

/// One `alias PATTERN MODULE` line, borrowed from the caller's buffer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Alias<'a> {
    pub pattern: &'a [u8],
    pub module: &'a [u8],
}

impl<'a> Alias<'a> {
    /// Ok(None) for a blank line or a `#` comment.
    pub fn parse(line: &'a [u8]) -> Result<Option<Alias<'a>>, ParseError> {
        let line = trim(line);
        if line.is_empty() || line.starts_with(b"#") {
            return Ok(None);
        }
        let mut words = words(line);
        if words.next() != Some(&b"alias"[..]) {
            return Err(ParseError::NotAlias);
        }
        let pattern = words.next().ok_or(ParseError::MissingPattern)?;
        let module = words.next().ok_or(ParseError::MissingModule)?;
        if words.next().is_some() {
            return Err(ParseError::TrailingWords);
        }
        if !pattern.iter().all(u8::is_ascii_graphic) {
            return Err(ParseError::BadPattern);
        }
        if !valid_name(module) {
            return Err(ParseError::BadModule);
        }
        Ok(Some(Alias { pattern, module }))
    }
}

/// kmod's alias_normalize: `-` becomes `_` except inside `[...]` (which runs to the first
/// `]`). None if a `]` comes outside brackets or a `[` is not closed, or if a pattern
/// that needs copying does not fit `buf`. `alias` itself comes back when nothing changes.
pub fn normalize<'b>(alias: &'b [u8], buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let mut dashes = false;
    let mut i = 0;
    while let Some(&c) = alias.get(i) {
        match c {
            b']' => return None,
            b'[' => i += memchr::memchr(b']', &alias[i..])?,
            b'-' => dashes = true,
            _ => {}
        }
        i += 1;
    }
    if !dashes {
        return Some(alias);
    }
    let out = buf.get_mut(..alias.len())?;
    out.copy_from_slice(alias);
    let mut i = 0;
    while let Some(c) = out.get_mut(i) {
        match *c {
            b'[' => i += memchr::memchr(b']', &alias[i..]).unwrap_or(0),
            b'-' => *c = b'_',
            _ => {}
        }
        i += 1;
    }
    Some(out)
}

/// Whether kmod's alias index matches the (normalized) `modalias` to the (normalized)
/// `pattern`: the literal head compares as bytes, the rest with `fnmatch`. For parsed
/// input (no NUL: `Alias::parse` and `coldplug::Modaliases` see to it), so unlike
/// `fnmatch` it does not look for one.
pub fn kmod_matches(pattern: &[u8], modalias: &[u8]) -> bool {
    Pattern::new(pattern).matches(modalias)
}

/// An alias pattern split once at its first wildcard, to match against many modaliases.
struct Pattern<'p> {
    head: &'p [u8],
    rest: &'p [u8],
    /// The head's first bytes as `prefix` reads them, and which of them there are: most
    /// patterns are told apart from most devices (`pci:` from `acpi:`) by one compare.
    key: u64,
    mask: u64,
}

/// Up to the first 8 bytes of `b`, little-endian, zero-padded.
fn prefix(b: &[u8]) -> u64 {
    match b.first_chunk::<8>() {
        Some(&bytes) => u64::from_le_bytes(bytes),
        None => b.iter().rev().fold(0, |k, &c| k << 8 | u64::from(c)),
    }
}

impl<'p> Pattern<'p> {
    fn new(pattern: &'p [u8]) -> Self {
        let at = pattern.iter().position(|&b| matches!(b, b'*' | b'?' | b'[')).unwrap_or(pattern.len());
        let (head, rest) = pattern.split_at(at);
        let mask = u64::MAX.checked_shr(8 * (8 - head.len().min(8)) as u32).unwrap_or(0);
        Pattern { head, rest, key: prefix(head), mask }
    }

    fn matches(&self, modalias: &[u8]) -> bool {
        // A modalias shorter than the key reads zeros there, which no head byte is.
        if prefix(modalias) & self.mask != self.key {
            return false;
        }
        match modalias.split_at_checked(self.head.len()) {
            Some((head, rest)) if head == self.head => glob(self.rest, rest, &mut 0),
            _ => false,
        }
    }
}

/// fnmatch(pattern, text, 0) == 0 as glibc answers it in the C locale. Both are C strings
/// there: each ends at its first NUL here too.
pub fn fnmatch(pattern: &[u8], text: &[u8]) -> bool {
    glob(pattern, text, &mut 0)
}

/// `fnmatch` counting its steps in `work` (from 0: no match past `WORK_LIMIT`).
fn glob(pattern: &[u8], text: &[u8], work: &mut u32) -> bool {
    let pattern = &pattern[..memchr::memchr(0, pattern).unwrap_or(pattern.len())];
    let text = &text[..memchr::memchr(0, text).unwrap_or(text.len())];
    let (mut p, mut t) = (0usize, 0usize);
    // After the last `*`: where the pattern goes on, and where in the text it last tried.
    let mut star: Option<(usize, usize)> = None;
    loop {
        *work += 1;
        if *work > WORK_LIMIT {
            return false;
        }
        let step = match pattern.get(p) {
            None if t == text.len() => return true,
            None => None,
            Some(b'*') => {
                // A run of `*` and `?` is one `*` after as many bytes as there are `?`.
                let mut skip = 0;
                while let Some(&c @ (b'*' | b'?')) = pattern.get(p) {
                    skip += usize::from(c == b'?');
                    p += 1;
                }
                t += skip;
                if t > text.len() {
                    return false;
                }
                if p == pattern.len() {
                    return true;
                }
                star = Some((p, t));
                continue;
            }
            Some(_) => element(pattern, p, text.get(t).copied(), work).map(|next| (next, t + 1)),
        };
        if let Some((next_p, next_t)) = step {
            (p, t) = (next_p, next_t);
            continue;
        }
        // Mismatch: the last `*` takes one more byte (none left: no match).
        let Some((resume, tried)) = star else { return false };
        let mut from = tried + 1;
        // What follows the `*` is a plain byte: only where the text has it can it match.
        let literal = match pattern.get(resume) {
            Some(b'\\') => pattern.get(resume + 1).copied(),
            Some(&c) if c != b'[' && c != b'?' => Some(c),
            _ => None,
        };
        if let Some(c) = literal {
            from += memchr::memchr(c, text.get(from..).unwrap_or(b"")).unwrap_or(text.len());
        }
        if from >= text.len() {
            return false;
        }
        star = Some((resume, from));
        (p, t) = (resume, from);
    }
}

/// One pattern element other than `*` at `p` against the text byte `ch` (None: the text
/// has ended, which no element matches): the index after the element if it matches.
fn element(pattern: &[u8], p: usize, ch: Option<u8>, work: &mut u32) -> Option<usize> {
    let ch = ch?;
    match *pattern.get(p)? {
        b'?' => Some(p + 1),
        // A trailing `\` matches nothing.
        b'\\' => (*pattern.get(p + 1)? == ch).then_some(p + 2),
        b'[' => match bracket(pattern, p + 1, ch, work) {
            Bracket::Matches(next) => Some(next),
            Bracket::Fails => None,
            // Unclosed: the `[` is an ordinary byte.
            Bracket::Literal => (ch == b'[').then_some(p + 1),
        },
        c => (c == ch).then_some(p + 1),
    }
}

enum Bracket {
    /// The byte is in the set (or, negated, not); the index after the `]`.
    Matches(usize),
    Fails,
    /// No `]` closes it.
    Literal,
}

/// `[` then `:`, `=` or `.` inside a set: POSIX classes, equivalence classes and
/// collating symbols, which keel does not support (file2alias never writes them; no line
/// of Debian's modules.alias has one). A set holding one never matches.
fn unsupported(at: &impl Fn(usize) -> u8, p: usize) -> bool {
    at(p) == b'[' && matches!(at(p + 1), b':' | b'=' | b'.')
}

/// A bracket expression whose `[` is just before `open`, against `ch`: glibc's
/// fnmatch_loop.c with a C locale (byte-order ranges), step for step, malformed cases
/// included, less the `unsupported` forms.
fn bracket(pattern: &[u8], open: usize, ch: u8, work: &mut u32) -> Bracket {
    // Past the end reads as NUL, as in C.
    let at = |i: usize| pattern.get(i).copied().unwrap_or(0);
    let mut p = open;
    let negated = matches!(at(p), b'!' | b'^');
    p += usize::from(negated);
    // Each pass takes one element at `p`: a byte (maybe escaped), maybe a range's start.
    let matched = loop {
        *work += 1;
        let low = match at(p) {
            0 => return Bracket::Literal,
            _ if unsupported(&at, p) => return Bracket::Fails,
            b'\\' if at(p + 1) == 0 => return Bracket::Fails,
            b'\\' => {
                p += 2;
                at(p - 1)
            }
            c => {
                p += 1;
                c
            }
        };
        // `low-high` unless the `-` comes last (`[a-]`), where it is a byte of its own.
        let (next, after) = (at(p), at(p + 1));
        if ch == low && !(next == b'-' && after != 0 && after != b']') {
            break true;
        }
        if next == b'-' && after != b']' {
            if after == b'[' && at(p + 2) == b'.' {
                return Bracket::Fails;
            }
            p += 2;
            let mut high = after;
            if high == b'\\' {
                high = at(p);
                p += 1;
            }
            // glibc: a set ending in `-` or `-\` matches nothing.
            if high == 0 {
                return Bracket::Fails;
            }
            if low <= ch && ch <= high {
                break true;
            }
        }
        if at(p) == b']' {
            p += 1;
            break false;
        }
    };
    if matched {
        // Skip the rest of the set, as glibc parses it.
        match skip_rest(&at, p, work) {
            Skipped::To(end) => p = end,
            Skipped::Unclosed => return Bracket::Literal,
            Skipped::Malformed => return Bracket::Fails,
        }
    }
    if matched != negated {
        Bracket::Matches(p)
    } else {
        Bracket::Fails
    }
}

enum Skipped {
    /// The index after the `]`.
    To(usize),
    /// No `]` closes it: the `[` is an ordinary byte after all (glibc 2.36 does this;
    /// older releases answered no match).
    Unclosed,
    Malformed,
}

/// From `p` inside a set that already matched: where it ends, as glibc parses the rest.
fn skip_rest(at: &impl Fn(usize) -> u8, mut p: usize, work: &mut u32) -> Skipped {
    loop {
        *work += 1;
        if unsupported(at, p) {
            return Skipped::Malformed;
        }
        let c = at(p);
        p += 1;
        match c {
            b']' => return Skipped::To(p),
            0 => return Skipped::Unclosed,
            b'\\' if at(p) == 0 => return Skipped::Malformed,
            b'\\' => p += 1,
            _ => {}
        }
    }
}

/// What one pass over modules.alias saw.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub lines: u32,
    /// Lines that are not `alias PATTERN MODULE`, or whose pattern kmod would reject.
    pub bad_lines: u32,
    /// Matched modules left out because `MAX_FOUND`/`FOUND_BYTES` were reached.
    pub left_out: u32,
    /// Devices past `MAX_DEVICES`, not matched.
    pub devices_left_out: u32,
}

/// The pure half of coldplug matching: fed modules.alias line by line (`feed`), it
/// collects each module whose alias matches one of `devices` (normalized modaliases,
/// `coldplug::Modaliases`), once, in modules.alias order.
pub struct AliasMatcher<'d> {
    devices: &'d [&'d [u8]],
    /// `prefix` of each device, so most lines are passed over without touching them.
    keys: heapless::Vec<u64, MAX_DEVICES>,
    found: ByteSet<MAX_FOUND, FOUND_BYTES>,
    pub summary: Summary,
}

impl<'d> AliasMatcher<'d> {
    /// Devices past `MAX_DEVICES` are left out (and counted).
    pub fn new(devices: &'d [&'d [u8]]) -> Self {
        let kept = &devices[..devices.len().min(MAX_DEVICES)];
        let keys = kept.iter().map(|d| prefix(d)).collect();
        let summary = Summary { devices_left_out: (devices.len() - kept.len()) as u32, ..Summary::default() };
        AliasMatcher { devices: kept, keys, found: ByteSet::new(), summary }
    }

    /// One modules.alias line (without its newline). `on_match(modalias, module)` for a
    /// module seen for the first time.
    pub fn feed(&mut self, line: &[u8], on_match: &mut dyn FnMut(&[u8], &[u8])) {
        self.summary.lines += 1;
        let alias = match Alias::parse(line) {
            Ok(Some(alias)) => alias,
            Ok(None) => return,
            Err(_) => {
                self.summary.bad_lines += 1;
                return;
            }
        };
        // Only a pattern with `-`, `[` or `]` can change or be refused (1 line in 200).
        let matched = if memchr::memchr3(b'-', b'[', b']', alias.pattern).is_none() {
            Some(self.first_match(alias.pattern))
        } else {
            let mut buf = [0u8; MAX_PATTERN];
            normalize(alias.pattern, &mut buf).map(|p| self.first_match(p))
        };
        match matched {
            None => self.summary.bad_lines += 1,
            Some(None) => {}
            Some(Some(device)) => match self.found.insert_by(alias.module, names_equal) {
                Ok(true) => on_match(device, alias.module),
                Ok(false) => {}
                Err(SetError::Full | SetError::Invalid) => self.summary.left_out += 1,
            },
        }
    }

    /// The first device the (normalized) pattern matches.
    fn first_match(&self, pattern: &[u8]) -> Option<&'d [u8]> {
        let pattern = Pattern::new(pattern);
        let candidates = self.keys.iter().zip(self.devices);
        candidates.filter(|(&key, _)| key & pattern.mask == pattern.key).map(|(_, &d)| d).find(|d| pattern.matches(d))
    }

    /// The modules found so far, in the order found.
    pub fn modules(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.found.iter()
    }

    /// The modules found, kept after the devices they came from are gone.
    pub fn into_modules(self) -> ByteSet<MAX_FOUND, FOUND_BYTES> {
        self.found
    }
}

/// Stream `dir`/modules.alias (dir as for `modules::load`) through one `modules::READ_BUF`
/// buffer into `matcher`. Err if the file cannot be opened.
pub fn match_file(dir: &[u8], matcher: &mut AliasMatcher, on_match: &mut dyn FnMut(&[u8], &[u8])) -> Result<(), rustix::io::Errno> {
    crate::boot::modules::stream_file(dir, b"/modules.alias", &mut |line| {
        matcher.feed(line, on_match);
        true
    })
}

#[cfg(test)]
mod tests;
