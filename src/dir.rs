//! Directory listings: getdents64 records in a caller-owned buffer, read through a checked
//! view. rustix's RawDir indexes its buffer (core::fmt's slice_index_fail, the last panic
//! site in PID 1) and trusts the kernel's record lengths; here a record that does not fit
//! its batch is an error (EIO), never a read past it.

use core::ffi::CStr;
use rustix::fd::BorrowedFd;
use rustix::fs::FileType;
use rustix::io::Errno;

/// struct linux_dirent64 (include/linux/dirent.h): native-endian, each record 8-aligned.
pub mod field {
    use core::ops::Range;
    pub const INO: Range<usize> = 0..8;
    pub const OFF: Range<usize> = 8..16;
    pub const RECLEN: Range<usize> = 16..18;
    pub const TYPE: usize = 18;
    pub const NAME: usize = 19;
}

/// A record is at least its header and a name's NUL.
pub const MIN_LEN: usize = field::NAME + 1;
/// Linux's NAME_MAX: no filesystem returns a longer name (and a record stays below 64 KiB).
pub const NAME_MAX: usize = 255;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// Shorter than its header, or than its `d_reclen`.
    Truncated,
    /// A `d_reclen` too short for a name, no NUL in the name, or a name over NAME_MAX.
    Malformed,
}

/// A view of one record at the start of `buffer`. No getter panics.
#[derive(Copy, Clone, Debug)]
pub struct Dirent<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Dirent<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Dirent { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let d = Self::new_unchecked(buffer);
        d.check_len()?;
        Ok(d)
    }

    /// The header is there, `d_reclen` covers a name and fits the buffer, the name ends.
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < field::NAME {
            return Err(Error::Truncated);
        }
        let len = usize::from(self.reclen());
        if len < MIN_LEN {
            return Err(Error::Malformed);
        }
        match b.get(field::NAME..len) {
            None => Err(Error::Truncated),
            Some(name) if !name.contains(&0) => Err(Error::Malformed),
            Some(_) => Ok(()),
        }
    }

    fn word(&self, at: core::ops::Range<usize>) -> u64 {
        self.buffer.as_ref().get(at).and_then(|w| w.try_into().ok()).map_or(0, u64::from_ne_bytes)
    }

    pub fn ino(&self) -> u64 {
        self.word(field::INO)
    }
    /// The cookie to seek to for the entries after this one.
    pub fn offset(&self) -> u64 {
        self.word(field::OFF)
    }
    pub fn reclen(&self) -> u16 {
        self.buffer.as_ref().get(field::RECLEN).and_then(|w| w.try_into().ok()).map_or(0, u16::from_ne_bytes)
    }
    pub fn kind(&self) -> u8 {
        self.buffer.as_ref().get(field::TYPE).copied().unwrap_or(0)
    }
    /// The name up to its NUL (empty without one: check_len refuses those).
    pub fn name(&self) -> &CStr {
        let b = self.buffer.as_ref();
        let name = b.get(field::NAME..usize::from(self.reclen())).unwrap_or_default();
        CStr::from_bytes_until_nul(name).unwrap_or_default()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Dirent<T> {
    fn put(&mut self, at: core::ops::Range<usize>, bytes: &[u8]) {
        if let Some(f) = self.buffer.as_mut().get_mut(at) {
            f.copy_from_slice(bytes.get(..f.len()).unwrap_or_default());
        }
    }
}

/// One directory entry, as rustix's RawDirEntry offers it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DirentRepr<'a> {
    pub ino: u64,
    pub offset: u64,
    /// `d_type`: DT_* (DT_UNKNOWN where the filesystem does not say).
    pub kind: u8,
    pub name: &'a CStr,
}

impl<'a> DirentRepr<'a> {
    pub fn parse(d: &Dirent<&'a [u8]>) -> Result<Self, Error> {
        d.check_len()?;
        let name = d.buffer.get(field::NAME..usize::from(d.reclen())).unwrap_or_default();
        let name = CStr::from_bytes_until_nul(name).map_err(|_| Error::Malformed)?;
        if name.to_bytes().len() > NAME_MAX {
            return Err(Error::Malformed);
        }
        Ok(DirentRepr { ino: d.ino(), offset: d.offset(), kind: d.kind(), name })
    }

    /// The record's length as the kernel writes it: header, name, NUL, padded to 8.
    pub fn buffer_len(&self) -> usize {
        (field::NAME + self.name.to_bytes_with_nul().len()).next_multiple_of(8)
    }

    /// Write the record (zero padding) into the first `buffer_len` bytes of `d`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, d: &mut Dirent<T>) {
        let len = self.buffer_len();
        if let Some(b) = d.buffer.as_mut().get_mut(..len) {
            b.fill(0);
        }
        d.put(field::INO, &self.ino.to_ne_bytes());
        d.put(field::OFF, &self.offset.to_ne_bytes());
        d.put(field::RECLEN, &(len as u16).to_ne_bytes());
        d.put(field::TYPE..field::TYPE + 1, &[self.kind]);
        d.put(field::NAME..field::NAME + self.name.to_bytes().len(), self.name.to_bytes());
    }

    pub fn file_name(&self) -> &'a CStr {
        self.name
    }
    pub fn file_type(&self) -> FileType {
        // DT_* are the S_IF* file-type bits shifted down by 12.
        FileType::from_raw_mode(u32::from(self.kind) << 12)
    }
    pub fn ino(&self) -> u64 {
        self.ino
    }
    pub fn next_entry_cookie(&self) -> u64 {
        self.offset
    }
}

/// The first record of `batch` and the length to step over it.
fn first(batch: &[u8]) -> Result<(DirentRepr<'_>, usize), Error> {
    let d = Dirent::new_unchecked(batch);
    DirentRepr::parse(&d).map(|e| (e, usize::from(d.reclen())))
}

/// The records `batch` (what one getdents64 wrote) holds, in order; an Err ends them.
pub fn records(batch: &[u8]) -> impl Iterator<Item = Result<DirentRepr<'_>, Error>> {
    let mut rest = batch;
    core::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match first(rest) {
            Ok((e, len)) => {
                rest = rest.get(len..).unwrap_or_default();
                Some(Ok(e))
            }
            Err(e) => {
                rest = &[];
                Some(Err(e))
            }
        }
    })
}

/// A directory's entries, a getdents64 batch at a time into `buf` (rustix's RawDir, but
/// over initialized bytes).
pub struct Dir<'b> {
    fd: BorrowedFd<'b>,
    buf: &'b mut [u8],
    at: usize,
    len: usize,
}

impl<'b> Dir<'b> {
    pub fn new(fd: BorrowedFd<'b>, buf: &'b mut [u8]) -> Self {
        Dir { fd, buf, at: 0, len: 0 }
    }

    /// The next entry; None at the end. Err: getdents64's error, or EIO for a record the
    /// kernel could not have written (the rest of its batch is skipped).
    pub fn next(&mut self) -> Option<Result<DirentRepr<'_>, Errno>> {
        if self.at >= self.len {
            match crate::sys::getdents64(self.fd, self.buf) {
                Ok(0) => return None,
                Ok(n) => (self.at, self.len) = (0, n),
                Err(e) => return Some(Err(e)),
            }
        }
        match first(self.buf.get(self.at..self.len).unwrap_or_default()) {
            Ok((e, len)) => {
                self.at += len;
                Some(Ok(e))
            }
            Err(_) => {
                self.at = self.len;
                Some(Err(Errno::IO))
            }
        }
    }
}

#[cfg(test)]
mod tests;
