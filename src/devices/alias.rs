//! modules.alias: which modules drive a device, from its modalias, as modprobe decides.
//!
//! depmod writes one `alias PATTERN MODULE` line for every alias a module declares
//! (`alias pci:v00001AF4d00001042sv*sd*bc*sc*i* virtio_pci`), and modprobe (libkmod) looks a
//! modalias up in the index it builds from them, modules.alias.bin. What that lookup does:
//! - both the pattern (depmod, output_aliases_bin) and the modalias (kmod_module_new_from_lookup)
//!   are normalized by alias_normalize: `-` becomes `_` outside `[...]`, and a `]` without
//!   `[` or an unclosed `[` makes the alias (or the lookup) invalid: `normalize`;
//! - the index is a trie: the bytes before the pattern's first `*`, `?` or `[` compare as
//!   they are, and the rest goes to fnmatch(3) against the rest of the modalias
//!   (libkmod-index.c, index_searchwild): `kmod_matches`;
//! - every module with a matching alias is loaded, each once.
//!
//! file2alias (the kernel's modpost) writes patterns of `*`, `?` and `[...]` sets with
//! ranges, nothing else, so that is what `fnmatch` here knows: glibc's answers for every
//! pattern `normalize` accepts (closed sets) without `\` or `[:class:]`, tested against
//! glibc itself. Elsewhere it differs only in what it refuses: a `\` is an ordinary byte,
//! an unclosed or empty set never matches. It is iterative (on a mismatch only the last
//! `*` takes one more byte, enough for glob patterns), so a match is at most pattern ×
//! text steps.
//!
//! `AliasMatcher` is fed modules.alias one line at a time (streamed like modules.dep:
//! Debian 12's is 1.3 MB, 26k lines) against a fixed set of modaliases.

use super::coldplug::MAX_DEVICES;
use super::ByteSet;
use crate::boot::modules::{trim, valid_name, words};

/// Bytes for the names of the modules one match collects (module names are at most 55
/// bytes, most under 16: some 300 modules).
pub const FOUND_BYTES: usize = 4096;

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

/// kmod's alias_normalize, in place: `-` becomes `_` except inside `[...]` (which runs to
/// the first `]`). False (the bytes then half done) if a `]` comes outside brackets or a
/// `[` is not closed.
pub fn normalize(alias: &mut [u8]) -> bool {
    let mut in_set = false;
    for c in alias.iter_mut() {
        match *c {
            b'[' => in_set = true,
            b']' if in_set => in_set = false,
            b']' => return false,
            b'-' if !in_set => *c = b'_',
            _ => {}
        }
    }
    !in_set
}

/// Whether kmod's alias index matches the (normalized) `modalias` to the (normalized)
/// `pattern`: the literal head compares as bytes, the rest with `fnmatch`.
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
            Some((head, rest)) if head == self.head => fnmatch(self.rest, rest),
            _ => false,
        }
    }
}

/// fnmatch(pattern, text, 0) == 0 as glibc answers it in the C locale, for the patterns
/// file2alias writes (see the module's comment for the rest).
pub fn fnmatch(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // After the last `*`: where the pattern goes on, and where in the text it last tried.
    let mut star: Option<(usize, usize)> = None;
    loop {
        match (pattern.get(p), text.get(t)) {
            (Some(b'*'), _) => {
                p += 1;
                star = Some((p, t));
                continue;
            }
            (Some(_), Some(&c)) => {
                if let Some(next) = element(pattern, p, c) {
                    (p, t) = (next, t + 1);
                    continue;
                }
            }
            (None, None) => return true,
            _ => {}
        }
        // Mismatch: the last `*` takes one more byte (none left: no match).
        match star {
            Some((resume, tried)) if tried < text.len() => {
                star = Some((resume, tried + 1));
                (p, t) = (resume, tried + 1);
            }
            _ => return false,
        }
    }
}

/// One pattern element other than `*` at `p` against the text byte `c`: the index after
/// the element if it matches.
fn element(pattern: &[u8], p: usize, c: u8) -> Option<usize> {
    match *pattern.get(p)? {
        b'?' => Some(p + 1),
        b'[' => {
            let mut i = p + 1;
            let negated = matches!(pattern.get(i), Some(b'!' | b'^'));
            i += usize::from(negated);
            let mut hit = false;
            // Members up to the first `]` (none: an empty set, which matches nothing);
            // `x-y` is a range unless the `-` comes last.
            loop {
                let low = *pattern.get(i)?;
                if low == b']' {
                    break;
                }
                let mut high = low;
                if let (Some(b'-'), Some(&h)) = (pattern.get(i + 1), pattern.get(i + 2)) {
                    if h != b']' {
                        high = h;
                        i += 2;
                    }
                }
                hit |= low <= c && c <= high;
                i += 1;
            }
            (hit != negated && i > p + 1 + usize::from(negated)).then_some(i + 1)
        }
        x => (x == c).then_some(p + 1),
    }
}

/// What one pass over modules.alias saw.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub lines: u32,
    /// Lines that are not `alias PATTERN MODULE`, or whose pattern kmod would reject.
    pub bad_lines: u32,
    /// Matched modules left out because `FOUND_BYTES` were reached.
    pub left_out: u32,
    /// Devices past `MAX_DEVICES`, not matched.
    pub devices_left_out: u32,
}

/// The modules a match found, in the order found (the caller's, so they outlive it).
pub type Found = ByteSet<FOUND_BYTES>;

/// The pure half of matching: fed modules.alias line by line (`feed`), it collects into
/// `found` each module whose alias matches one of the devices (normalized modaliases),
/// once, in modules.alias order.
pub struct AliasMatcher<'d, 'f> {
    devices: heapless::Vec<&'d [u8], MAX_DEVICES>,
    found: &'f mut Found,
    pub summary: Summary,
}

impl<'d, 'f> AliasMatcher<'d, 'f> {
    /// Devices (normalized modaliases: `coldplug::Modaliases::iter`) past `MAX_DEVICES`
    /// are left out, and counted.
    pub fn new(devices: impl IntoIterator<Item = &'d [u8]>, found: &'f mut Found) -> Self {
        let mut matcher = AliasMatcher { devices: heapless::Vec::new(), found, summary: Summary::default() };
        for d in devices {
            if matcher.devices.push(d).is_err() {
                matcher.summary.devices_left_out += 1;
            }
        }
        matcher
    }

    /// One modules.alias line (without its newline), normalized in place (the module name
    /// too: names compare with `-` and `_` alike anyway).
    pub fn feed(&mut self, line: &mut [u8]) {
        self.summary.lines += 1;
        let valid = normalize(line);
        let alias = match Alias::parse(line) {
            Ok(Some(alias)) if valid => alias,
            Ok(None) => return,
            _ => {
                self.summary.bad_lines += 1;
                return;
            }
        };
        let pattern = Pattern::new(alias.pattern);
        if self.devices.iter().any(|d| pattern.matches(d)) {
            if self.found.insert(alias.module, false).is_err() {
                self.summary.left_out += 1;
            }
        }
    }

    /// The modules found so far, in the order found.
    pub fn modules(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.found.iter()
    }
}

/// Stream `dir`/modules.alias (dir as for `modules::load`) through one `modules::READ_BUF`
/// buffer into `matcher`. Err if the file cannot be opened.
pub fn match_file(dir: &[u8], matcher: &mut AliasMatcher<'_, '_>) -> Result<(), rustix::io::Errno> {
    crate::boot::modules::stream_file(dir, b"/modules.alias", &mut |line| {
        matcher.feed(line);
        true
    })
}

#[cfg(test)]
mod tests;
