//! Kernel modules: `modules.dep` read line by line through one fixed buffer (Debian's is
//! ~500 KiB and never held whole), the load order resolved by pure code (`Resolver`), then
//! each module inserted once with finit_module(2). A missing or failing module is a warning
//! naming it, never fatal.
//!
//! Load order: a modules.dep line lists the module's whole dependency closure, and modprobe
//! inserts it last-first (libkmod prepends each dependency as it reads the line). For
//! `virtio_pci.ko: virtio_pci_legacy_dev.ko virtio_pci_modern_dev.ko virtio.ko virtio_ring.ko`
//! `modprobe --show-depends virtio_pci` on Debian 12's 6.1 kernel prints virtio_ring,
//! virtio, virtio_pci_modern_dev, virtio_pci_legacy_dev, virtio_pci: `DepLine::load_order`.
//! Soft dependencies (modules.softdep, e.g. ext4's `crypto-crc32c`) and aliases are not
//! followed: list such modules (crc32c_generic) by name.
//!
//! Parameters: the kernel applies `NAME.param=value` words of its command line to built-in
//! modules only; for a loadable one it is modprobe that passes them (kmod reads
//! /proc/cmdline). keel does the same (`cmdline_params`): `ramoops.mem_address=0x8000000`
//! reaches ramoops.ko.

use crate::clock::Instant;
use crate::log::{Bytes, Errno};
use core::ffi::CStr;
use rustix::fd::OwnedFd;
use rustix::io::Errno as E;

/// finit_module flag: the file is compressed and the kernel decompresses it
/// (CONFIG_MODULE_DECOMPRESS, Linux 5.17+; older kernels answer EINVAL, kernels without
/// the option EOPNOTSUPP).
pub const MODULE_INIT_COMPRESSED_FILE: i32 = 4;
/// Most distinct names one pass over modules.dep resolves, and the bytes of their lines it
/// keeps (Debian 12's longest line is 1032 bytes, virtio_pci's 180, most under 100). Not
/// limits of `load`: more names, or lines that do not fit, take another pass (coldplug on a
/// q35 VM with Debian's whole tree asks for about 40 modules, a laptop for 100); and the
/// load list itself is held nowhere (`Resolver::plan_each`).
pub const MAX_REQUESTS: usize = 32;
pub const LINE_ARENA: usize = 8 * 1024;
/// The window modules.dep is streamed through; a longer line is skipped with a warning.
pub const READ_BUF: usize = 4 * 1024;
/// Longest module name: the kernel's MODULE_NAME_LEN (64 - sizeof(long)) less its NUL.
pub const MAX_NAME: usize = 55;
/// Longest path keel builds (/lib/modules/<release>/<path from modules.dep>).
pub const PATH_CAPACITY: usize = 512;
/// Room for one module's parameters from the command line.
pub const PARAMS_MAX: usize = 256;
/// The kernel's COMMAND_LINE_SIZE on x86 and arm64.
const CMDLINE_MAX: usize = 2048;

/// The command line's `NAME.param=value` words for module `name` (`-` and `_` alike), as
/// finit_module(2)'s parameter string `param=value param2=value2`, in their order (a later
/// one wins, as with modprobe). None if they do not fit in `out`.
pub fn cmdline_params<'b>(cmdline: &[u8], name: &[u8], out: &'b mut [u8]) -> Option<&'b CStr> {
    let mut len = 0;
    for word in crate::config::cmdline::words(cmdline) {
        let mut parts = word.splitn(2, |&b| b == b'.');
        let (Some(module), Some(param)) = (parts.next(), parts.next()) else { continue };
        if param.is_empty() || !names_equal(module, name) {
            continue;
        }
        if len > 0 {
            *out.get_mut(len)? = b' ';
            len += 1;
        }
        out.get_mut(len..)?.get_mut(..param.len())?.copy_from_slice(param);
        len += param.len();
    }
    *out.get_mut(len)? = 0;
    CStr::from_bytes_until_nul(out).ok()
}

/// How a module file is compressed, from its suffix.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Xz,
    Zstd,
    Gzip,
}

const SUFFIXES: [(&[u8], Compression); 4] = [
    (b".ko", Compression::None),
    (b".ko.xz", Compression::Xz),
    (b".ko.zst", Compression::Zstd),
    (b".ko.gz", Compression::Gzip),
];

/// A module name as given (`virtio-pci` and `virtio_pci` are one module): 1 to `MAX_NAME`
/// printable ASCII bytes, no `/`, `:` nor space.
pub fn valid_name(name: &[u8]) -> bool {
    (1..=MAX_NAME).contains(&name.len()) && name.iter().all(|&b| path_byte(b) && b != b'/')
}

fn path_byte(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b':'
}

/// The module in `path`: its file name without `.ko`, `.ko.xz`, `.ko.zst` or `.ko.gz`, and
/// how it is compressed. None for anything else.
pub fn module_name(path: &[u8]) -> Option<(&[u8], Compression)> {
    if path.is_empty() || !path.iter().all(|&b| path_byte(b)) {
        return None;
    }
    let base = path.rsplit(|&b| b == b'/').next()?;
    SUFFIXES.iter().find_map(|&(suffix, how)| base.strip_suffix(suffix).filter(|n| valid_name(n)).map(|n| (n, how)))
}

/// Module names compare with `-` and `_` alike, as the kernel and modprobe do.
#[inline(never)] // smaller out of line (`just size`)
pub fn names_equal(a: &[u8], b: &[u8]) -> bool {
    let norm = |c: u8| if c == b'-' { b'_' } else { c };
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| norm(x) == norm(y))
}

/// Why a modules.dep line was not understood.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Nothing but blanks.
    Empty,
    NoColon,
    /// The module path before the colon is not a `.ko*` file path.
    BadPath,
    /// A dependency is not a `.ko*` file path (this includes a second colon).
    BadDependency,
}

/// One modules.dep line, borrowed from the caller's buffer:
/// `kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko`.
/// Paths are relative to /lib/modules/<release>/ unless they start with `/`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DepLine<'a> {
    pub path: &'a [u8],
    /// The text after the colon; every word in it was checked by `parse`.
    deps: &'a [u8],
}

pub(crate) fn words(text: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    text.split(|&b| b == b' ' || b == b'\t').filter(|w| !w.is_empty())
}

pub(crate) fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r'] = s {
        s = rest;
    }
    s
}

impl<'a> DepLine<'a> {
    pub fn parse(line: &'a [u8]) -> Result<DepLine<'a>, ParseError> {
        let line = trim(line);
        if line.is_empty() {
            return Err(ParseError::Empty);
        }
        let colon = memchr::memchr(b':', line).ok_or(ParseError::NoColon)?;
        let path = &line[..colon];
        module_name(path).ok_or(ParseError::BadPath)?;
        let deps = &line[colon + 1..];
        if !words(deps).all(|d| module_name(d).is_some()) {
            return Err(ParseError::BadDependency);
        }
        Ok(DepLine { path, deps })
    }

    /// The module's name (checked by `parse`).
    pub fn name(&self) -> &'a [u8] {
        module_name(self.path).map_or(b"", |(n, _)| n)
    }

    /// Dependencies as listed.
    pub fn deps(&self) -> impl DoubleEndedIterator<Item = &'a [u8]> {
        words(self.deps)
    }

    /// Every path to insert, in modprobe's order: the dependencies last-first, then the module.
    pub fn load_order(&self) -> impl Iterator<Item = &'a [u8]> {
        self.deps().rev().chain(core::iter::once(self.path))
    }
}

/// One module to insert, borrowed from a `Resolver`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LoadItem<'a> {
    pub path: &'a [u8],
    pub name: &'a [u8],
    pub compression: Compression,
}

/// Why resolving fell short; each names what was left out where it can.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ResolveError<'n> {
    /// Not a module name (empty, too long, `/`, blanks or control bytes).
    BadName(&'n [u8]),
    /// More than the resolver's capacity of distinct requested names.
    TooManyNames(&'n [u8]),
    /// The module's modules.dep line did not fit in what is left of the line arena.
    NoRoom(&'n [u8]),
    /// More modules (dependencies included) than `plan`'s list holds; the rest are left out.
    TooManyModules,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Lookup {
    Pending,
    /// Where its line is in the arena (u16: the stack of `load` holds 128 of these).
    Found { start: u16, end: u16 },
    NoRoom,
}

/// The pure half of loading: told the wanted names (`want`), fed modules.dep one line at a
/// time in any chunking (`feed`), it keeps only the lines of wanted modules and then yields
/// the load order (`plan`): each wanted module after its dependencies, every module once.
/// Capacities are parameters so tests can pin small ones.
pub struct Resolver<'n, const REQ: usize = MAX_REQUESTS, const ARENA: usize = LINE_ARENA> {
    wanted: heapless::Vec<(&'n [u8], Lookup), REQ>,
    lines: heapless::Vec<u8, ARENA>,
}

impl<'n, const REQ: usize, const ARENA: usize> Default for Resolver<'n, REQ, ARENA> {
    fn default() -> Self {
        Resolver::new()
    }
}

impl<'n, const REQ: usize, const ARENA: usize> Resolver<'n, REQ, ARENA> {
    pub const fn new() -> Self {
        Resolver { wanted: heapless::Vec::new(), lines: heapless::Vec::new() }
    }

    /// Ask for a module by name; asking twice (or as `a-b` and `a_b`) is asking once.
    pub fn want(&mut self, name: &'n [u8]) -> Result<(), ResolveError<'n>> {
        if !valid_name(name) {
            return Err(ResolveError::BadName(name));
        }
        if self.wanted.iter().any(|(n, _)| names_equal(n, name)) {
            return Ok(());
        }
        self.wanted.push((name, Lookup::Pending)).map_err(|_| ResolveError::TooManyNames(name))
    }

    pub fn is_empty(&self) -> bool {
        self.wanted.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.wanted.is_full()
    }

    /// One modules.dep line (without its newline). Lines that do not parse, or are not of a
    /// wanted module, are passed over; the first line of a module wins.
    pub fn feed(&mut self, line: &[u8]) -> Result<(), ResolveError<'n>> {
        let Ok(dep) = DepLine::parse(line) else { return Ok(()) };
        let name = dep.name();
        let Some(slot) = self.wanted.iter_mut().find(|(n, l)| *l == Lookup::Pending && names_equal(n, name)) else {
            return Ok(());
        };
        let start = self.lines.len();
        let (Ok(()), Ok(start), Ok(end)) = (self.lines.extend_from_slice(line), u16::try_from(start), u16::try_from(start + line.len())) else {
            self.lines.truncate(start);
            slot.1 = Lookup::NoRoom;
            return Err(ResolveError::NoRoom(slot.0));
        };
        slot.1 = Lookup::Found { start, end };
        Ok(())
    }

    /// Feed a whole in-memory modules.dep text.
    pub fn feed_text(&mut self, text: &[u8], mut on_error: impl FnMut(ResolveError<'n>)) {
        for line in text.split(|&b| b == b'\n') {
            if let Err(e) = self.feed(line) {
                on_error(e);
            }
        }
    }

    /// Every wanted module's line has been seen (or could not be kept): reading may stop.
    pub fn done(&self) -> bool {
        self.wanted.iter().all(|(_, l)| *l != Lookup::Pending)
    }

    /// Wanted names not (yet) found in modules.dep: built in, or missing.
    pub fn missing(&self) -> impl Iterator<Item = &'n [u8]> + '_ {
        self.with(Lookup::Pending)
    }

    /// Wanted names whose line did not fit (`ResolveError::NoRoom`).
    pub fn no_room(&self) -> impl Iterator<Item = &'n [u8]> + '_ {
        self.with(Lookup::NoRoom)
    }

    fn with(&self, lookup: Lookup) -> impl Iterator<Item = &'n [u8]> + '_ {
        self.wanted.iter().filter(move |(_, l)| *l == lookup).map(|(n, _)| *n)
    }

    /// The load list into `out`: `plan_each`'s items. On `TooManyModules` the list holds
    /// what fitted, in a loadable order.
    pub fn plan<'r, const N: usize>(&'r self, out: &mut heapless::Vec<LoadItem<'r>, N>) -> Result<(), ResolveError<'n>> {
        let mut full = false;
        self.plan_each(&mut |item| full |= out.push(item).is_err());
        if full {
            return Err(ResolveError::TooManyModules);
        }
        Ok(())
    }

    /// The load list, one module at a time and held nowhere: for each wanted module found,
    /// in the order asked, its dependencies last-first then itself, skipping any module
    /// given already (found by going over the list again: n² name compares for n modules,
    /// and no capacity to run out of). By name, not path: a bad modules.dep may name one
    /// module by two paths (`w-w.ko`, `w_w.ko.xz`).
    pub fn plan_each<'r>(&'r self, on_item: &mut dyn FnMut(LoadItem<'r>)) {
        let mut k = 0;
        self.each_path(&mut |path| {
            let here = k;
            k += 1;
            let Some((name, compression)) = module_name(path) else { return true };
            let (mut i, mut given) = (0, false);
            if here > 0 {
                self.each_path(&mut |earlier| {
                    given = module_name(earlier).is_some_and(|(e, _)| names_equal(e, name));
                    i += 1;
                    !given && i < here
                });
            }
            if !given {
                on_item(LoadItem { path, name, compression });
            }
            true
        });
    }

    /// Every path of the load list, duplicates and all, until `f` says stop. The lines were
    /// checked by `feed`: split, not parsed again.
    fn each_path<'r>(&'r self, f: &mut dyn FnMut(&'r [u8]) -> bool) {
        for &(_, lookup) in self.wanted.iter() {
            let Lookup::Found { start, end } = lookup else { continue };
            let line = trim(self.lines.get(usize::from(start)..usize::from(end)).unwrap_or(b""));
            let Some(colon) = memchr::memchr(b':', line) else { continue };
            let mut order = words(&line[colon + 1..]).rev().chain(core::iter::once(trim(&line[..colon])));
            if !order.all(&mut *f) {
                return;
            }
        }
    }
}

/// Stream lines out of `read` through `buf` without ever holding the whole text: each line
/// (without its newline; the last one may lack it) goes to `on_line`, which may change it
/// in place and returns false to stop. A line that does not fit in `buf` with its newline is skipped whole and its first
/// `buf.len()` bytes go to `on_long`. `read` fills the slice it is given and returns how much it wrote, 0 at the end.
/// The callbacks are `dyn` so the loop is compiled once, whoever calls it.
pub fn for_each_line<E>(
    read: &mut dyn FnMut(&mut [u8]) -> Result<usize, E>,
    buf: &mut [u8],
    on_line: &mut dyn FnMut(&mut [u8]) -> bool,
    on_long: &mut dyn FnMut(&[u8]),
) -> Result<(), E> {
    let mut filled = 0;
    let mut skipping = false;
    loop {
        if filled == buf.len() {
            // No newline in a full buffer: the line is too long for it.
            if !skipping {
                on_long(buf);
            }
            skipping = true;
            filled = 0;
        }
        // Checked forms here and below (never None): indexing would bring core::fmt's panic.
        let Some(free) = buf.get_mut(filled..) else { return Ok(()) };
        let n = read(free)?;
        if n == 0 {
            if filled > 0 && !skipping {
                on_line(&mut buf[..filled]);
            }
            return Ok(());
        }
        // A reader claiming more than it was given is clamped, never trusted.
        let end = filled + n.min(buf.len() - filled);
        let (mut start, mut from) = (0, filled);
        while let Some(nl) = buf.get(from..end).and_then(|unread| memchr::memchr(b'\n', unread)) {
            let nl = from + nl;
            if skipping {
                skipping = false;
            } else if !buf.get_mut(start..nl).is_some_and(|line| on_line(line)) {
                return Ok(());
            }
            start = nl + 1;
            from = start;
        }
        if let Some(read) = buf.get_mut(..end) {
            read.copy_within(start.min(end).., 0);
        }
        filled = end - start;
    }
}

/// What `load` did, for the boot log: `{}` prints `3 loaded, 1 already present, 0 failed`
/// and, if any, `, 2 without their hardware`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub loaded: u16,
    pub present: u16,
    pub failed: u16,
    /// finit_module said ENODEV: the driver found none of its hardware (cpufreq on a VM,
    /// EDAC without ECC memory): expected when modules are matched by modalias.
    pub absent: u16,
}

impl Summary {
    pub fn add(&mut self, other: Summary) {
        self.loaded += other.loaded;
        self.present += other.present;
        self.failed += other.failed;
        self.absent += other.absent;
    }
}

impl Summary {
    /// `3 loaded, 1 already present, 0 failed[, 2 without their hardware]` onto `line`.
    pub fn fill(&self, line: &mut crate::log::Line) {
        use crate::log::say::{fill, Part::N};
        fill(line, b"% loaded, % already present, % failed", &[N(self.loaded.into()), N(self.present.into()), N(self.failed.into())]);
        if self.absent > 0 {
            fill(line, b", % without their hardware", &[N(self.absent.into())]);
        }
    }
}

pub(crate) fn read_retry(fd: &OwnedFd, buf: &mut [u8]) -> Result<usize, E> {
    loop {
        match rustix::io::read(crate::sys::fd::borrow(fd), &mut *buf) {
            Err(E::INTR) => continue,
            other => return other,
        }
    }
}

fn open_ro(path: &CStr) -> Result<OwnedFd, E> {
    use rustix::fs::{Mode, OFlags};
    crate::sys::fd::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
}

/// Every line of the file at `dir` + `file` to `on_line` (until it returns false); lines
/// longer than `READ_BUF` are skipped with a warning. A file that cannot be opened is Err.
pub(crate) fn stream_file(dir: &[u8], file: &[u8], on_line: &mut dyn FnMut(&mut [u8]) -> bool) -> Result<(), E> {
    let mut path_buf = [0u8; PATH_CAPACITY];
    let path = crate::file::c_path(&[dir, file], &mut path_buf).ok_or(E::NAMETOOLONG)?;
    let fd = open_ro(path)?;
    let mut buf = [0u8; READ_BUF];
    let result = for_each_line(&mut |b| read_retry(&fd, b), &mut buf, on_line, &mut |start| {
        report(b"", "line too long, skipped: ", Some(&start[..start.len().min(60)]), None)
    });
    if let Err(e) = result {
        report(b"", "reading ", Some(path.to_bytes()), Some(e));
    }
    Ok(())
}

/// One console line about a module, `module NAME: WHAT[DETAIL][ (ERRNO)]`, or about the
/// module files when `name` is empty (`modules: ...`); a `warning: ` when there is an errno
/// or no name. One non-generic function keeps all the formatting in one place in the binary.
#[inline(never)]
fn report(name: &[u8], what: &str, detail: Option<&[u8]>, errno: Option<E>) {
    let mut line = crate::log::begin();
    if errno.is_some() || name.is_empty() {
        line.push_bytes(b"warning: ");
    }
    line.push_bytes(if name.is_empty() { b"modules" } else { b"module " });
    let _ = ufmt::uwrite!(line, "{}: ", Bytes(name));
    line.push_bytes(what.as_bytes());
    if let Some(detail) = detail {
        let _ = ufmt::uwrite!(line, "{}", Bytes(detail));
    }
    if let Some(e) = errno {
        let _ = ufmt::uwrite!(line, " ({})", Errno(e));
    }
    crate::log::emit(line);
}

/// Warnings carry an errno; these name the problem instead.
const NOT_A_NAME: E = E::INVAL;
const NO_ROOM: E = E::NOSPC;
const NOT_FOUND: E = E::NOENT;

fn report_resolve(e: ResolveError) {
    match e {
        ResolveError::BadName(n) => report(n, "not a module name", None, Some(NOT_A_NAME)),
        ResolveError::TooManyNames(n) => report(n, "too many modules asked for; left out", None, Some(NO_ROOM)),
        ResolveError::NoRoom(n) => report(n, "modules.dep lines exceed the line arena; left out", None, Some(NO_ROOM)),
        // Only from `plan`, which `load` does not use.
        ResolveError::TooManyModules => {}
    }
}

/// The module shows in /sys/module (loaded, or built in with parameters or a version).
pub fn in_sys_module(name: &[u8]) -> bool {
    let mut underscored = [0u8; MAX_NAME];
    let Some(dst) = underscored.get_mut(..name.len()) else { return false };
    for (d, &s) in dst.iter_mut().zip(name) {
        *d = if s == b'-' { b'_' } else { s };
    }
    let mut buf = [0u8; PATH_CAPACITY];
    let Some(path) = crate::file::c_path(&[b"/sys/module/", dst], &mut buf) else { return false };
    rustix::fs::access(path, rustix::fs::Access::EXISTS).is_ok()
}

/// The module is built into the kernel: in /sys/module or listed in modules.builtin.
fn is_builtin(dir: &[u8], name: &[u8]) -> bool {
    if in_sys_module(name) {
        return true;
    }
    let mut found = false;
    let _ = stream_file(dir, b"/modules.builtin", &mut |line| {
        found = module_name(trim(line)).is_some_and(|(n, _)| names_equal(n, name));
        !found
    });
    found
}

/// The running kernel's modules: /lib/modules/RELEASE (uname -r).
pub fn dir(buf: &mut [u8; PATH_CAPACITY]) -> &[u8] {
    let uname = rustix::system::uname();
    crate::file::c_path(&[b"/lib/modules/", uname.release().to_bytes()], buf).map_or(&b""[..], |d| d.to_bytes())
}

/// Load `names` (in order, each after its dependencies, each module once) from `dir`
/// (`dir()`), with the parameters the command line in `cmdline` (/proc/cmdline) gives them
/// (the tests use their own of both). Never fails: problems are logged as warnings naming
/// the module, and counted. One copy in the binary (the names are `dyn`): boot and hotplug
/// both call it. `MAX_REQUESTS` names a pass over modules.dep; the names after them, and
/// those whose line found the arena full, go to the next pass.
pub fn load<'n>(dir: &[u8], names: &mut dyn Iterator<Item = &'n [u8]>, cmdline: &CStr) -> Summary {
    let mut summary = Summary::default();
    summary.failed += in_passes(names, &mut |resolver| load_pass(dir, resolver, cmdline, &mut summary));
    summary
}

/// `names` a pass (`MAX_REQUESTS`) at a time: each `Resolver` to `pass`, which feeds it
/// modules.dep; the names whose line did not fit go to the next pass. The count of names
/// left out (not module names, or lines that never fit).
fn in_passes<'n>(names: &mut dyn Iterator<Item = &'n [u8]>, pass: &mut dyn FnMut(&mut Resolver<'n>)) -> u16 {
    let mut failed = 0;
    let mut carried: heapless::Vec<&'n [u8], MAX_REQUESTS> = heapless::Vec::new();
    loop {
        let mut resolver: Resolver<'n> = Resolver::new();
        for &name in carried.iter() {
            let _ = resolver.want(name);
        }
        carried.clear();
        while let Some(name) = if resolver.is_full() { None } else { names.next() } {
            if let Err(e) = resolver.want(name) {
                report_resolve(e);
                failed += 1;
            }
        }
        if resolver.is_empty() {
            return failed;
        }
        pass(&mut resolver);
        // No line kept at all: those left can never fit (a line longer than the arena).
        let stuck = resolver.wanted.iter().all(|(_, l)| !matches!(l, Lookup::Found { .. }));
        for name in resolver.no_room() {
            if stuck || carried.push(name).is_err() {
                report_resolve(ResolveError::NoRoom(name));
                failed += 1;
            }
        }
    }
}

/// One pass of `load`: modules.dep read for the wanted names, their modules inserted.
fn load_pass<'n>(dir: &[u8], resolver: &mut Resolver<'n>, cmdline: &CStr, summary: &mut Summary) {
    let read = stream_file(dir, b"/modules.dep", &mut |line| {
        // The only error, NoRoom, is the next pass's.
        let _ = resolver.feed(line);
        !resolver.done()
    });
    if let Err(e) = read {
        report(b"", "cannot open modules.dep in ", Some(dir), Some(e));
    }
    for name in resolver.missing() {
        if is_builtin(dir, name) {
            report(name, "built in", None, None);
            summary.present += 1;
        } else {
            report(name, "not in modules.dep", None, Some(NOT_FOUND));
            summary.failed += 1;
        }
    }
    resolver.plan_each(&mut |item| match insert(dir, &item, cmdline) {
        Ok(Some(micros)) => {
            summary.loaded += 1;
            crate::log::say::say(b"module % loaded in % us", &[crate::log::say::Part::T(item.name), crate::log::say::Part::N(micros)]);
        }
        Ok(None) => summary.present += 1,
        Err((_, E::NODEV)) => summary.absent += 1,
        Err((what, e)) => {
            summary.failed += 1;
            let compressed = item.compression != Compression::None && matches!(e, E::INVAL | E::OPNOTSUPP);
            report(item.name, if compressed { "compressed, and the kernel cannot decompress modules" } else { what }, None, Some(e));
        }
    });
}

/// Insert one module unless it is already there: Ok(Some(microseconds taken)) when
/// inserted, Ok(None) when already present, Err((what failed, errno)). Out of line, the
/// command line read here: the stack of the modules phase is PID 1's deepest.
#[inline(never)]
fn insert(dir: &[u8], item: &LoadItem, cmdline: &CStr) -> Result<Option<u64>, (&'static str, E)> {
    if in_sys_module(item.name) {
        return Ok(None);
    }
    let mut path_buf = [0u8; PATH_CAPACITY];
    let parts: &[&[u8]] = if item.path.starts_with(b"/") { &[item.path] } else { &[dir, b"/", item.path] };
    let path = crate::file::c_path(parts, &mut path_buf).ok_or(("cannot open its file", E::NAMETOOLONG))?;
    let start = Instant::now();
    let fd = open_ro(path).map_err(|e| ("cannot open its file", e))?;
    let flags = if item.compression == Compression::None { 0 } else { MODULE_INIT_COMPRESSED_FILE };
    let (mut line, mut params) = ([0u8; CMDLINE_MAX], [0u8; PARAMS_MAX]);
    let line = crate::file::read_into(cmdline, &mut line).unwrap_or_default();
    let params = cmdline_params(line, item.name, &mut params).ok_or(("its command-line parameters are too long", E::NOSPC))?;
    match rustix::system::finit_module(&fd, params, flags) {
        Ok(()) => Ok(Some(Instant::now().0.saturating_sub(start.0) / 1000)),
        // Loaded meanwhile, or by a path /sys/module did not show.
        Err(E::EXIST) => Ok(None),
        Err(e) => Err(("finit_module failed", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines of Debian 12's modules.dep (linux-image-6.1.0-56-amd64, depmod of kmod 30).
    const DEBIAN: &[u8] = b"\
kernel/arch/x86/crypto/crc32c-intel.ko:
kernel/fs/mbcache.ko:
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/fs/jbd2/jbd2.ko:
kernel/crypto/crc32c_generic.ko:
kernel/lib/crc16.ko:
kernel/drivers/acpi/button.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/virtio_console.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/input/evdev.ko:
kernel/net/vmw_vsock/vsock.ko:
kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko: kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko kernel/net/vmw_vsock/vsock.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko: kernel/net/vmw_vsock/vsock.ko
";

    fn plan_names(text: &[u8], names: &[&'static [u8]]) -> Vec<String> {
        let mut r: Resolver = Resolver::new();
        for n in names {
            r.want(n).unwrap();
        }
        r.feed_text(text, |e| panic!("{e:?}"));
        let mut out: heapless::Vec<LoadItem, 256> = heapless::Vec::new();
        r.plan(&mut out).unwrap();
        out.iter().map(|i| String::from_utf8(i.name.to_vec()).unwrap()).collect()
    }

    /// One module by two paths (a file and its compressed twin, `-` and `_` apart: a bad
    /// modules.dep, as the modules_dep fuzz target made one) is loaded once, by its name.
    #[test]
    fn a_module_named_by_two_paths_is_planned_once() {
        let text = b"a.ko.zst: w-w.ko w_w.ko.xz\nb.ko: kernel/w-w.ko\n";
        assert_eq!(plan_names(text, &[b"a", b"b"]), ["w_w", "a", "b"]);
    }

    #[test]
    fn command_line_parameters_go_to_their_module() {
        // The command line of tests/qemu/test_pstore.py, with a module named both ways.
        let line = b"console=ttyS0 memmap=1M!128M ramoops.mem_address=0x8000000 ramoops.mem_size=0x100000 \
                     virtio-pci.force_legacy=1 keel.debug=hvc0:rw ramoops.max_reason=4 ramoops. .x=1 ramoopsy.a=1 ramoops.s=\"a b\"";
        let params = |name: &[u8], room: usize| {
            let mut out = vec![0xa5u8; room];
            cmdline_params(line, name, &mut out).map(|c| c.to_bytes().to_vec())
        };
        let ramoops = b"mem_address=0x8000000 mem_size=0x100000 max_reason=4 s=\"a b\"".to_vec();
        assert_eq!(params(b"ramoops", PARAMS_MAX), Some(ramoops.clone()));
        assert_eq!(params(b"virtio_pci", PARAMS_MAX), Some(b"force_legacy=1".to_vec()), "- and _ alike");
        assert_eq!(params(b"ext4", PARAMS_MAX), Some(vec![]), "none: an empty string");
        assert_eq!(params(b"ramoops", ramoops.len() + 1), Some(ramoops.clone()), "exactly fits with its NUL");
        assert_eq!(params(b"ramoops", ramoops.len()), None, "one byte short");
        assert_eq!(params(b"ext4", 0), None);
    }

    #[test]
    fn parses_good_lines() {
        let l = DepLine::parse(
            b"kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko",
        )
        .unwrap();
        assert_eq!(l.path, b"kernel/drivers/block/virtio_blk.ko");
        assert_eq!(l.name(), b"virtio_blk");
        let deps: Vec<&[u8]> = l.deps().collect();
        assert_eq!(deps, [&b"kernel/drivers/virtio/virtio.ko"[..], b"kernel/drivers/virtio/virtio_ring.ko"]);
        let order: Vec<&[u8]> = l.load_order().collect();
        assert_eq!(
            order,
            [&b"kernel/drivers/virtio/virtio_ring.ko"[..], b"kernel/drivers/virtio/virtio.ko", b"kernel/drivers/block/virtio_blk.ko"]
        );

        let none = DepLine::parse(b"kernel/crypto/crc32c_generic.ko:").unwrap();
        assert_eq!(none.deps().count(), 0);
        assert_eq!(none.load_order().collect::<Vec<_>>(), [b"kernel/crypto/crc32c_generic.ko"]);
        // Blanks around, tabs between, a CR at the end, compressed and absolute paths.
        let l = DepLine::parse(b"  /opt/m/a.ko.zst:\tb.ko.xz  c.ko.gz \r").unwrap();
        assert_eq!(l.path, b"/opt/m/a.ko.zst");
        assert_eq!(l.name(), b"a");
        assert_eq!(l.deps().count(), 2);
    }

    #[test]
    fn bad_lines_are_errors_not_panics() {
        use ParseError::*;
        let cases: &[(&[u8], ParseError)] = &[
            (b"", Empty),
            (b" \t\r", Empty),
            (b"kernel/a.ko kernel/b.ko", NoColon),
            (b":", BadPath),
            (b": kernel/b.ko", BadPath),
            (b"kernel/a.txt: kernel/b.ko", BadPath),
            (b"kernel/.ko:", BadPath),
            (b"kernel/a/:", BadPath),
            (b"\xff\xfe.ko:", BadPath),
            (b"ker nel/a.ko:", BadPath),
            (b"kernel/a\0.ko:", BadPath),
            (b"kernel/a.ko: kernel/b.txt", BadDependency),
            (b"kernel/a.ko: kernel/b.ko: kernel/c.ko", BadDependency),
            (b"kernel/a.ko: \x01.ko", BadDependency),
            (b"kernel/a.ko: kernel/\xc3\xa9.ko", BadDependency),
        ];
        for &(line, want) in cases {
            assert_eq!(DepLine::parse(line), Err(want), "{:?}", String::from_utf8_lossy(line));
        }
        let long = [b'a'; MAX_NAME + 1];
        let mut line = long.to_vec();
        line.extend_from_slice(b".ko:");
        assert_eq!(DepLine::parse(&line), Err(BadPath));
    }

    #[test]
    fn names_and_suffixes() {
        assert_eq!(module_name(b"kernel/drivers/virtio/virtio_pci.ko"), Some((&b"virtio_pci"[..], Compression::None)));
        assert_eq!(module_name(b"kernel/arch/x86/crypto/crc32c-intel.ko"), Some((&b"crc32c-intel"[..], Compression::None)));
        assert_eq!(module_name(b"a/b.ko.xz"), Some((&b"b"[..], Compression::Xz)));
        assert_eq!(module_name(b"b.ko.zst"), Some((&b"b"[..], Compression::Zstd)));
        assert_eq!(module_name(b"b.ko.gz"), Some((&b"b"[..], Compression::Gzip)));
        for bad in [&b""[..], b".ko", b"a.ko.bz2", b"a.o", b"a.ko/", b"a.kox", b"dir.ko/a"] {
            assert_eq!(module_name(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(names_equal(b"virtio-pci", b"virtio_pci"));
        assert!(names_equal(b"crc32c_intel", b"crc32c-intel"));
        assert!(!names_equal(b"virtio_pci", b"virtio_pc"));
        assert!(!names_equal(b"virtio.pci", b"virtio_pci"));
        assert!(valid_name(b"vmw_vsock_virtio_transport"));
        assert!(!valid_name(b""));
        assert!(!valid_name(b"a/b"));
        assert!(!valid_name(b"a b"));
    }

    #[test]
    fn dependencies_load_last_first_like_modprobe() {
        // What `modprobe --show-depends` prints for these on Debian 12.
        assert_eq!(
            plan_names(DEBIAN, &[b"virtio_pci"]),
            ["virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci"]
        );
        assert_eq!(plan_names(DEBIAN, &[b"ext4"]), ["jbd2", "mbcache", "crc16", "ext4"]);
        assert_eq!(
            plan_names(DEBIAN, &[b"vmw_vsock_virtio_transport"]),
            ["virtio_ring", "virtio", "vsock", "vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport"]
        );
    }

    #[test]
    fn each_module_once_in_the_order_asked() {
        let names: &[&[u8]] = &[
            b"virtio-pci",
            b"virtio_blk",
            b"virtio_console",
            b"crc32c_generic",
            b"crc32c_intel",
            b"ext4",
            b"button",
            b"evdev",
            b"virtio",
            b"vmw_vsock_virtio_transport",
            b"virtio_pci",
        ];
        assert_eq!(
            plan_names(DEBIAN, names),
            [
                "virtio_ring",
                "virtio",
                "virtio_pci_modern_dev",
                "virtio_pci_legacy_dev",
                "virtio_pci",
                "virtio_blk",
                "virtio_console",
                "crc32c_generic",
                "crc32c-intel",
                "jbd2",
                "mbcache",
                "crc16",
                "ext4",
                "button",
                "evdev",
                "vsock",
                "vmw_vsock_virtio_transport_common",
                "vmw_vsock_virtio_transport",
            ]
        );
    }

    #[test]
    fn missing_and_garbage() {
        let mut r: Resolver = Resolver::new();
        r.want(b"virtio_blk").unwrap();
        r.want(b"crc32").unwrap();
        r.want(b"virtio_blk").unwrap();
        assert_eq!(r.want(b"bad/name"), Err(ResolveError::BadName(b"bad/name")));
        assert!(!r.done());
        let text = b"garbage\n\xff\xff\nkernel/drivers/block/virtio_blk.ko: kernel/virtio.ko\n: :\n";
        r.feed_text(text, |e| panic!("{e:?}"));
        assert_eq!(r.missing().collect::<Vec<_>>(), [b"crc32"]);
        let mut out: heapless::Vec<LoadItem, 8> = heapless::Vec::new();
        r.plan(&mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], LoadItem { path: b"kernel/virtio.ko", name: b"virtio", compression: Compression::None });
        // The first line of a module wins; once every name is found, `done` says stop.
        let mut r: Resolver = Resolver::new();
        r.want(b"a").unwrap();
        r.feed(b"x/a.ko.xz:").unwrap();
        assert!(r.done());
        r.feed(b"y/a.ko: y/b.ko").unwrap();
        let mut out: heapless::Vec<LoadItem, 8> = heapless::Vec::new();
        r.plan(&mut out).unwrap();
        assert_eq!(out[..], [LoadItem { path: b"x/a.ko.xz", name: b"a", compression: Compression::Xz }]);
    }

    #[test]
    fn capacity_exceeded_is_an_error_not_a_panic() {
        let mut r: Resolver<2, 64> = Resolver::new();
        r.want(b"a").unwrap();
        r.want(b"b").unwrap();
        r.want(b"a-").unwrap_err();
        r.want(b"b").unwrap();
        assert_eq!(r.want(b"c"), Err(ResolveError::TooManyNames(b"c")));
        r.feed(b"k/a.ko: k/x.ko k/y.ko k/z.ko").unwrap();
        // 28 bytes kept; b's 42 do not fit in the 36 left.
        assert_eq!(r.feed(b"k/b.ko: k/x.ko k/y.ko k/z.ko k/w.ko k/v.ko"), Err(ResolveError::NoRoom(b"b")));
        assert!(r.done());
        assert_eq!(r.missing().count(), 0);
        let mut out: heapless::Vec<LoadItem, 3> = heapless::Vec::new();
        assert_eq!(r.plan(&mut out), Err(ResolveError::TooManyModules));
        let names: Vec<&[u8]> = out.iter().map(|i| i.name).collect();
        assert_eq!(names, [&b"z"[..], b"y", b"x"]);
    }

    /// `text` through `for_each_line` with reads of at most `chunk` bytes into `buf_len`.
    fn stream(text: &[u8], chunk: usize, buf_len: usize) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let mut rest = text;
        let mut buf = vec![0u8; buf_len];
        let (mut lines, mut long) = (Vec::new(), Vec::new());
        for_each_line(
            &mut |b: &mut [u8]| -> Result<usize, ()> {
                let n = rest.len().min(chunk).min(b.len());
                b[..n].copy_from_slice(&rest[..n]);
                rest = &rest[n..];
                Ok(n)
            },
            &mut buf,
            &mut |l| {
                lines.push(l.to_vec());
                true
            },
            &mut |l| long.push(l.to_vec()),
        )
        .unwrap();
        (lines, long)
    }

    #[test]
    fn streams_lines_through_a_small_buffer() {
        let text = b"a.ko:\nbb.ko: a.ko\n\nccc.ko: a.ko bb.ko\nlast.ko:";
        let want: Vec<Vec<u8>> = text.split(|&b| b == b'\n').map(|l| l.to_vec()).collect();
        for chunk in 1..=text.len() {
            for buf_len in [19, 20, 64, 4096] {
                let (lines, long) = stream(text, chunk, buf_len);
                assert_eq!(lines, want, "chunk {chunk} buf {buf_len}");
                assert!(long.is_empty());
            }
        }
        // Lines longer than the buffer are skipped and reported; the rest still come.
        let text = b"short\nthis line is far too long for it\nok\nanother very long line here\n";
        for chunk in 1..=8 {
            let (lines, long) = stream(text, chunk, 8);
            assert_eq!(lines, [b"short".to_vec(), b"ok".to_vec()], "chunk {chunk}");
            assert_eq!(long, [b"this lin".to_vec(), b"another ".to_vec()]);
        }
        // A long last line without newline is skipped too; an empty text gives no line.
        assert_eq!(stream(b"x\n0123456789", 3, 8).0, [b"x".to_vec()]);
        assert!(stream(b"", 3, 8).0.is_empty());
        // Stopping early.
        let mut seen = 0;
        let mut src: &[u8] = b"1\n2\n3\n";
        for_each_line(
            &mut |b: &mut [u8]| -> Result<usize, ()> {
                let n = src.len().min(b.len());
                b[..n].copy_from_slice(&src[..n]);
                src = &src[n..];
                Ok(n)
            },
            &mut [0u8; 16],
            &mut |_| {
                seen += 1;
                seen < 2
            },
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(seen, 2);
    }

    #[test]
    fn summary_and_paths() {
        let mut l = crate::log::Line::new();
        Summary { loaded: 3, present: 1, failed: 0, absent: 0 }.fill(&mut l);
        assert_eq!(l.as_bytes(), b"3 loaded, 1 already present, 0 failed");
        let mut l = crate::log::Line::new();
        Summary { loaded: 3, present: 0, failed: 1, absent: 2 }.fill(&mut l);
        assert_eq!(l.as_bytes(), b"3 loaded, 0 already present, 1 failed, 2 without their hardware");
        let mut buf = [0u8; PATH_CAPACITY];
        assert_eq!(crate::file::c_path(&[b"/lib/modules/", b"6.1.0"], &mut buf).unwrap().to_bytes(), b"/lib/modules/6.1.0");
        assert!(crate::file::c_path(&[&[b'a'; PATH_CAPACITY]], &mut buf).is_none());
        assert!(crate::file::c_path(&[b"a\0b"], &mut buf).is_none());
    }

    /// The side-effecting half over a modules directory made here: finit_module is only
    /// ever given a file that is not a module, which every kernel refuses.
    #[test]
    fn loads_from_a_directory_and_counts() {
        let dir = std::env::temp_dir().join(format!("keel-modules-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("kernel/x")).unwrap();
        std::fs::write(dir.join("kernel/x/keel_fake.ko"), b"not an ELF file").unwrap();
        std::fs::write(
            dir.join("modules.dep"),
            b"kernel/x/other.ko:\nkernel/x/keel_fake.ko: kernel/y/keel_fake_dep.ko\ngarbage\n",
        )
        .unwrap();
        std::fs::write(dir.join("modules.builtin"), b"kernel/fs/keel-builtin-fake.ko\n").unwrap();
        let names: [&[u8]; 4] = [b"keel-fake", b"keel_builtin_fake", b"keel_missing_fake", b"bad/name"];
        let summary = load(dir.to_str().unwrap().as_bytes(), &mut names.into_iter(), c"/nonexistent");
        std::fs::remove_dir_all(&dir).unwrap();
        // keel_fake_dep: no file; keel_fake: not a module; keel_missing_fake; bad/name.
        assert_eq!(summary, Summary { loaded: 0, present: 1, failed: 4, absent: 0 });
        // Without modules.dep every name is missing unless built in.
        let summary = load(b"/lib/modules/keel-no-such-release", &mut [&b"keel_missing_fake"[..]].into_iter(), c"/nonexistent");
        assert_eq!(summary, Summary { loaded: 0, present: 0, failed: 1, absent: 0 });
    }

    /// More names than a pass resolves, with lines that overflow its arena: every module is
    /// planned once, across passes, and the passes end.
    #[test]
    fn names_past_a_pass_go_to_the_next() {
        let long = "x/".repeat(190);
        let names: Vec<String> = (0..MAX_REQUESTS + 9).map(|i| format!("keel_pass{i:02}")).collect();
        let dep: String = names.iter().map(|n| format!("kernel/{long}{n}.ko:\n")).collect();
        assert!(dep.len() > 2 * LINE_ARENA, "three passes at least");
        let mut asked: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
        asked.extend([&b"bad/name"[..], b"keel_missing"]);
        let (mut planned, mut passes) = (Vec::new(), 0);
        let left_out = in_passes(&mut asked.into_iter(), &mut |r| {
            passes += 1;
            r.feed_text(dep.as_bytes(), |_| {});
            r.plan_each(&mut |item| planned.push(String::from_utf8(item.name.to_vec()).unwrap()));
        });
        assert_eq!(planned, names, "each once, in the order asked");
        // 41 names of 400-byte lines: 32 asked, 20 fit the 8 KiB; then 12 + 9, 20; then 1.
        assert_eq!((left_out, passes), (1, 3), "bad/name is left out");
        // A line that never fits an empty arena (capacities smaller than keel's) ends too.
        let mut passes = 0;
        let left_out = in_passes(&mut [&b"keel_pass00"[..]].into_iter(), &mut |r| {
            passes += 1;
            let _ = r.feed(format!("kernel/{long}keel_pass00.ko:").as_bytes());
            // As a full arena answers: the name's line did not fit.
            r.wanted.iter_mut().for_each(|w| w.1 = Lookup::NoRoom);
        });
        assert_eq!((left_out, passes), (1, 1));
    }

    use keel_proto::testutil::XorShift;

    #[test]
    fn random_and_mutated_input_never_panics() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let alphabet = b"ko.:/ _-\t\nxzgst\r\0\xff";
        for round in 0..4000 {
            let mut text = DEBIAN.to_vec();
            if round % 2 == 0 {
                let len = rng.below(300);
                text = (0..len).map(|_| alphabet[rng.below(alphabet.len())]).collect();
            } else {
                for _ in 0..1 + rng.below(8) {
                    let at = rng.below(text.len());
                    match rng.below(3) {
                        0 => text[at] = rng.next() as u8,
                        1 => text[at] = alphabet[rng.below(alphabet.len())],
                        _ => text.truncate(at),
                    }
                    if text.is_empty() {
                        break;
                    }
                }
            }
            for line in text.split(|&b| b == b'\n') {
                if let Ok(l) = DepLine::parse(line) {
                    assert!(module_name(l.path).is_some());
                    assert!(l.deps().all(|d| module_name(d).is_some()));
                }
            }
            let mut r: Resolver<4, 256> = Resolver::new();
            for n in [&b"virtio_pci"[..], b"ext4", b"x", b"virtio-blk", b"k"] {
                let _ = r.want(n);
            }
            r.feed_text(&text, |_| {});
            let mut out: heapless::Vec<LoadItem, 6> = heapless::Vec::new();
            let _ = r.plan(&mut out);
            let (lines, _) = stream(&text, 1 + rng.below(64), 1 + rng.below(128));
            assert!(lines.len() <= text.len() + 1);
        }
    }
}
