use super::*;
use keel_proto::testutil::XorShift;

impl ReadAt for Vec<u8> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> usize {
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(self.len());
        let n = (self.len() - start).min(buf.len());
        buf[..n].copy_from_slice(&self[start..start + n]);
        n
    }
}

/// A record made of lines.
fn file(lines: &[&str]) -> Vec<u8> {
    lines.iter().flat_map(|l| l.bytes().chain([b'\n'])).collect()
}

fn previous(records: &[(&str, Vec<u8>)], clean_recorded: bool) -> Previous<Vec<u8>> {
    let mut p = Previous::new();
    for (name, bytes) in records {
        p.add(name.as_bytes(), bytes.clone());
    }
    p.finish(clean_recorded);
    p
}

/// Every line of a stream, as `SECONDS text`.
fn stream(p: &Previous<Vec<u8>>, keel: bool) -> Vec<String> {
    let (mut c, mut buf, mut out) = (Cursor::default(), [0u8; LINE_MAX], vec![]);
    while let Some((ns, text)) = p.next_of(keel, &mut c, &mut buf) {
        out.push(format!("{}.{:06} {}", ns / 1_000_000_000, ns % 1_000_000_000 / 1000, String::from_utf8_lossy(text)));
    }
    out
}

/// Shutdown dumps on (ramoops.max_reason=4).
const RAMOOPS: bool = true;

// The shape of the records Debian's 6.1 kernel left in ramoops under QEMU (tests/qemu/
// test_pstore.py; real ones are in testdata/): a boot whose shell ran `echo c >
// /proc/sysrq-trigger` (panic=-1: the panic's dump, then the emergency restart's).
fn panicked() -> Vec<String> {
    [
        "<5>[    0.000000] Linux version 6.1.0-57-amd64 (debian-kernel@lists.debian.org)",
        "<31>[    2.019976] keel: version 0.1.0 starting as PID 1",
        "<31>[    2.191615] keel: svc shell: waiting -> ready",
        "<6>[    2.410000] sysrq: Trigger a crash",
        "<0>[    2.410100] Kernel panic - not syncing: sysrq triggered crash",
        "<4>[    2.426714]  </TASK>",
        "<0>[    2.427177] Kernel Offset: disabled",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn dump(header: &str, lines: &[String]) -> Vec<u8> {
    let mut all = vec![header];
    all.extend(lines.iter().map(String::as_str));
    file(&all)
}

#[test]
fn record_names() {
    assert_eq!(kind_of(b"dmesg-ramoops-0"), Some(Kind::Dmesg));
    assert_eq!(kind_of(b"dmesg-ramoops-15"), Some(Kind::Dmesg));
    assert_eq!(kind_of(b"dmesg-efi_pstore-173456789012001"), Some(Kind::Dmesg));
    assert_eq!(kind_of(b"console-ramoops-0"), Some(Kind::Console));
    assert_eq!(kind_of(b"pmsg-ramoops-0"), Some(Kind::Pmsg));
    for other in ["dmesg-ramoops-0.enc.z", "ftrace-ramoops-0", "mce-erst-1", "dmesg", "dmesgx-ramoops-0", "", ".", ".."] {
        assert_eq!(kind_of(other.as_bytes()), None, "{other}");
    }
}

#[test]
fn dump_headers() {
    let h = |s: &str| parse_header(s.as_bytes());
    assert_eq!(h("Panic#1 Part1"), Some(Reason::Panic));
    assert_eq!(h("Emergency#2 Part1"), Some(Reason::Emergency));
    assert_eq!(h("Oops#3 Part2"), Some(Reason::Oops));
    assert_eq!(h("Shutdown#1 Part1"), Some(Reason::Shutdown));
    // Reasons keel does not know (Linux before 5.8 said Restart, Halt, Poweroff; Unknown):
    // the line is then read as a log line.
    for other in ["Restart#1 Part1", "Unknown#4 Part1", "", "Panic", "Panic#", "Panic#1", "Panic#1 part1", "<6>[    0.000000] Linux"] {
        assert_eq!(h(other), None, "{other}");
    }
}

#[test]
fn kernel_lines() {
    let l = parse_line(b"<31>[    2.855526] keel: reboot");
    assert_eq!(l, KernelLine { pri: Some(31), ns: Some(2_855_526_000), text: b"keel: reboot" });
    assert!(l.is_keel());
    let l = parse_line(b"<0>[    2.862363] reboot: Restarting system");
    assert_eq!((l.pri, l.ns, kernel_end(l.text)), (Some(0), Some(2_862_363_000), Some(PowerCmd::Reboot)));
    assert!(!l.is_keel());
    // The console's form, without the priority.
    let l = parse_line(b"[12345.000001] keel: ready");
    assert_eq!((l.pri, l.ns, l.text, l.is_keel()), (None, Some(12_345_000_001_000), &b"keel: ready"[..], true));
    assert_eq!(parse_line(b"<6>[    0.000000] Linux").ns, Some(0));
    assert_eq!(parse_line(b"<6>[1.500000]x").ns, Some(1_500_000_000));
    // A kernel message that merely says `keel: ` is not keel's (another facility).
    assert!(!parse_line(b"<6>[    1.000000] keel: spoof").is_keel());
    assert!(parse_line(b"<30>[    1.000000] keel: daemon.info").is_keel());
    // Cut, odd and broken prefixes: the rest is text.
    for (line, text) in [
        (&b"ECC: No errors detected"[..], &b"ECC: No errors detected"[..]),
        (b"<6>", b""),
        (b"<x>[    1.000000] t", b"<x>[    1.000000] t"),
        (b"<6>[    1.000000 t", b"[    1.000000 t"),
        (b"<6>[1.0000000000] t", b"[1.0000000000] t"),
        (b"<6>[1.5] t", b"[1.5] t"),
        (b"<6>[    .000000] t", b"[    .000000] t"),
        (b"<6>[ 99999999999999999999.1] t", b"[ 99999999999999999999.1] t"),
        (b"[] t", b"[] t"),
        (b"", b""),
    ] {
        let l = parse_line(line);
        assert_eq!((l.ns, l.text), (None, text), "{:?}", String::from_utf8_lossy(line));
    }
    assert_eq!(kernel_end(b"reboot: Restarting system with command 'bootloader'"), Some(PowerCmd::Reboot));
    assert_eq!(kernel_end(b"reboot: System halted"), Some(PowerCmd::Halt));
    assert_eq!(kernel_end(b"reboot: Power down"), Some(PowerCmd::PowerOff));
    assert_eq!(kernel_end(b"reboot: Restarting"), None);
    assert_eq!(marker(b"clean poweroff"), Some(PowerCmd::PowerOff));
    assert_eq!(marker(b"clean reboot"), Some(PowerCmd::Reboot));
    assert_eq!(marker(b"clean halt"), Some(PowerCmd::Halt));
    for not in ["reboot", "clean", "clean  reboot", "clean reboot now", "poweroff requested (signal)"] {
        assert_eq!(marker(not.as_bytes()), None, "{not}");
    }
}

#[test]
fn the_ending_follows_the_strongest_evidence() {
    const PANIC: usize = Reason::Panic as usize;
    const OOPS: usize = Reason::Oops as usize;
    const EMERGENCY: usize = Reason::Emergency as usize;
    const SHUTDOWN: usize = Reason::Shutdown as usize;
    let e = |f: fn(&mut Evidence)| {
        let mut e = Evidence { clean_recorded: RAMOOPS, ..Evidence::default() };
        f(&mut e);
        decide(&e)
    };
    assert_eq!(e(|e| e.first[PANIC] = Some(0)), (Ending::Panic, Some(0)));
    // panic=N: the panic's dump, then the emergency restart's; the panic tells.
    assert_eq!(e(|e| (e.first[PANIC], e.first[EMERGENCY]) = (Some(1), Some(0))), (Ending::Panic, Some(1)));
    assert_eq!(e(|e| e.first[EMERGENCY] = Some(0)), (Ending::Emergency, Some(0)));
    // A reboot(2): keel's marker says it was keel's power sequence and which command.
    assert_eq!(e(|e| (e.first[SHUTDOWN], e.marker) = (Some(0), Some((PowerCmd::PowerOff, 0)))), (Ending::PowerOff, Some(0)));
    assert_eq!(e(|e| e.marker = Some((PowerCmd::Reboot, 2))), (Ending::Reboot, Some(2)), "from pmsg alone");
    assert_eq!(e(|e| (e.first[SHUTDOWN], e.kernel_end) = (Some(0), Some(PowerCmd::Halt))), (Ending::Halt, Some(0)));
    assert_eq!(e(|e| e.first[SHUTDOWN] = Some(0)), (Ending::Shutdown, Some(0)));
    // An oops, then a clean reboot: the reboot ended it. An oops and nothing after: the oops.
    assert_eq!(e(|e| (e.first[OOPS], e.first[SHUTDOWN], e.kernel_end) = (Some(0), Some(1), Some(PowerCmd::Reboot))).0, Ending::Reboot);
    assert_eq!(e(|e| e.first[OOPS] = Some(0)), (Ending::Oops, Some(0)));
    // No record at all.
    assert_eq!(e(|_| {}), (Ending::Lost, None), "a clean end would have left a record");
    assert_eq!(e(|e| e.clean_recorded = false), (Ending::Unknown, None), "max_reason < 4, no pmsg: a clean end leaves nothing");
    // The kernel's line alone (no dump header) does not make a clean end.
    assert_eq!(e(|e| e.kernel_end = Some(PowerCmd::Reboot)), (Ending::Lost, None));
}

#[test]
fn a_panic_and_its_emergency_restart_are_read_once() {
    let lines = panicked();
    // Listed newest first (readdir order is not the dumps' order).
    let p = previous(&[("dmesg-ramoops-1", dump("Emergency#2 Part1", &lines)), ("dmesg-ramoops-0", dump("Panic#1 Part1", &lines))], RAMOOPS);
    assert_eq!(p.ending, Ending::Panic);
    assert_eq!(p.detail, b"Panic dump");
    let kernel = stream(&p, false);
    assert_eq!(kernel.len(), lines.len(), "{kernel:#?}");
    assert_eq!(kernel[0], "0.000000 Linux version 6.1.0-57-amd64 (debian-kernel@lists.debian.org)");
    assert_eq!(kernel[1], "2.019976 keel: version 0.1.0 starting as PID 1");
    assert_eq!(kernel.last().unwrap(), "2.427177 Kernel Offset: disabled");
    assert_eq!(stream(&p, true), ["2.019976 version 0.1.0 starting as PID 1", "2.191615 svc shell: waiting -> ready"]);
    assert_eq!(p.lines, [kernel.len() as u32, 2]);
}

#[test]
fn overlapping_dumps_are_merged_in_time_order() {
    // An oops, then more log, then the panic: the panic's dump starts later (its record was
    // too small for the beginning) and goes further.
    let oops = file(&["Oops#1 Part1", "<6>[    1.000000] a", "<6>[    2.000000] b", "<4>[    3.000000] oops"]);
    let panic = file(&["Panic#2 Part1", "<6>[    2.000000] b", "<4>[    3.000000] oops", "<6>[    4.000000] c", "<0>[    5.000000] panic"]);
    let p = previous(&[("dmesg-ramoops-1", panic), ("dmesg-ramoops-0", oops)], RAMOOPS);
    assert_eq!(stream(&p, false), ["1.000000 a", "2.000000 b", "3.000000 oops", "4.000000 c", "5.000000 panic"]);
    assert_eq!((p.ending, p.lines), (Ending::Panic, [5, 0]));
}

#[test]
fn keels_marker_makes_a_clean_end() {
    let mut lines = panicked();
    lines.truncate(3);
    lines.extend(
        [
            "<31>[    2.853769] keel: remounted / read-only",
            "<31>[    2.855000] keel: clean reboot",
            "<31>[    2.855526] keel: reboot",
            "<6>[    2.861708] ACPI: PM: Preparing to enter system sleep state S5",
            "<0>[    2.862363] reboot: Restarting system",
        ]
        .map(String::from),
    );
    let p = previous(&[("dmesg-ramoops-0", dump("Shutdown#1 Part1", &lines))], RAMOOPS);
    assert_eq!((p.ending, p.ending.name()), (Ending::Reboot, "reboot"));
    assert_eq!(p.detail, b"Shutdown dump, keel's marker in it");
    assert_eq!(stream(&p, true).last().unwrap(), "2.855526 reboot");
    // A fatal error ends in reboot(2) too, without the marker: the kernel's line tells the rest.
    lines[4] = "<31>[    2.855000] keel: fatal: epoll_wait: EBADF".into();
    let p = previous(&[("dmesg-ramoops-0", dump("Shutdown#1 Part1", &lines))], RAMOOPS);
    assert_eq!(p.ending, Ending::Reboot);
    assert_eq!(p.detail, b"Shutdown dump, not by keel's power sequence");
    // The marker only counts as keel's last word: a line after it undoes it.
    lines[4] = "<31>[    2.855000] keel: clean reboot".into();
    lines.insert(5, "<31>[    2.855100] keel: still going".into());
    let p = previous(&[("dmesg-ramoops-0", dump("Shutdown#1 Part1", &lines))], RAMOOPS);
    assert_eq!(p.detail, b"Shutdown dump, not by keel's power sequence");
    // Without the kernel's last words either: a shutdown, which one unknown.
    lines.pop();
    let p = previous(&[("dmesg-ramoops-0", dump("Shutdown#1 Part1", &lines))], RAMOOPS);
    assert_eq!((p.ending.name(), &p.detail[..]), ("shutdown", &b"Shutdown dump, not by keel's power sequence"[..]));
}

#[test]
fn pmsg_carries_the_marker_across_a_boot_without_dumps() {
    let console = file(&["[    2.000000] keel: poweroff requested (signal 12 from pid 1)", "[    2.500000] reboot: Power down"]);
    let pmsg = file(&["keel: clean poweroff"]);
    let p = previous(&[("pmsg-ramoops-0", pmsg), ("console-ramoops-0", console)], RAMOOPS);
    assert_eq!((p.ending, &p.detail[..]), (Ending::PowerOff, &b"keel's marker in pmsg"[..]));
    // Without a dump the console is the kernel's log; pmsg lines are keel's, untimed.
    assert_eq!(stream(&p, false), ["2.000000 keel: poweroff requested (signal 12 from pid 1)", "2.500000 reboot: Power down"]);
    assert_eq!(stream(&p, true), ["2.000000 poweroff requested (signal 12 from pid 1)", "0.000000 clean poweroff"]);
    assert_eq!(p.lines, [2, 2]);
    // A dump makes the console redundant.
    let p = previous(&[("console-ramoops-0", file(&["[    9.000000] console"])), ("dmesg-ramoops-0", dump("Oops#1 Part1", &panicked()))], RAMOOPS);
    assert!(!stream(&p, false).iter().any(|l| l.contains("console")));
    assert_eq!((p.ending.name(), &p.detail[..]), ("kernel oops", &b"Oops dump"[..]));
}

#[test]
fn nothing_recorded() {
    let p = previous(&[], RAMOOPS);
    assert_eq!((p.ending, p.ending.name()), (Ending::Lost, "power loss or reset"));
    assert_eq!(p.detail, b"no record, though a clean end leaves one");
    assert_eq!((stream(&p, false), p.lines), (Vec::<String>::new(), [0, 0]));
    let p = previous(&[], false);
    assert_eq!((p.ending.name(), &p.detail[..]), ("unknown", &b"no record, and a clean end leaves none"[..]));
    // Records of other kinds are not kept.
    let p = previous(&[("ftrace-ramoops-0", file(&["x"]))], RAMOOPS);
    assert!(p.is_empty());
}

#[test]
fn more_records_than_room_are_left_out() {
    let records: Vec<(String, Vec<u8>)> =
        (0..MAX_RECORDS + 3).map(|i| (format!("dmesg-ramoops-{i}"), file(&["Oops#1 Part1", &format!("<6>[    {i}.000000] line {i}")]))).collect();
    let refs: Vec<(&str, Vec<u8>)> = records.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let p = previous(&refs, RAMOOPS);
    assert_eq!(p.len(), MAX_RECORDS);
    assert_eq!(stream(&p, false).len(), MAX_RECORDS);
}

#[test]
fn a_line_longer_than_the_buffer_comes_in_pieces() {
    let long = format!("<6>[    1.000000] {}", "x".repeat(2 * LINE_MAX));
    let p = previous(&[("dmesg-ramoops-0", file(&["Panic#1 Part1", &long, "<0>[    2.000000] end"]))], RAMOOPS);
    let lines = stream(&p, false);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0].len(), "1.000000 ".len() + LINE_MAX - "<6>[    1.000000] ".len());
    assert_eq!(lines[3], "2.000000 end");
    assert_eq!(p.lines[0], 4);
}

#[test]
fn random_records_never_panic_and_streams_match_their_counts() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let names = ["dmesg-ramoops-0", "dmesg-ramoops-1", "console-ramoops-0", "pmsg-ramoops-0"];
    let pieces: &[&[u8]] =
        &[b"Panic#1 Part1\n", b"Shutdown#3 Part1\n", b"<31>[    2.5] keel: clean halt\n", b"<6>[  1.0] x\n", b"<0>[9.9] reboot: Power down\n", b"keel: clean reboot\n", b"\n", b"<", b"["];
    for _ in 0..3000 {
        let mut p = Previous::new();
        for name in names {
            if rng.below(2) == 0 {
                continue;
            }
            let mut bytes = vec![];
            for _ in 0..rng.below(12) {
                if rng.below(3) == 0 {
                    bytes.extend(rng.junk(40));
                } else {
                    bytes.extend_from_slice(pieces[rng.below(pieces.len())]);
                }
            }
            p.add(name.as_bytes(), bytes);
        }
        p.finish(rng.below(2) == 0);
        assert_eq!([stream(&p, false).len() as u32, stream(&p, true).len() as u32], p.lines);
        assert!(!p.ending.name().is_empty() && !p.detail.is_empty());
    }
}

const REBOOT: &[u8] = include_bytes!("testdata/reboot-dmesg-ramoops-0");
const PANIC: &[u8] = include_bytes!("testdata/panic-dmesg-ramoops-0");
const EMERGENCY: &[u8] = include_bytes!("testdata/panic-dmesg-ramoops-1");

#[test]
fn real_records_of_a_reboot() {
    assert_eq!(parse_header(REBOOT.split(|&b| b == b'\n').next().unwrap()), Some(Reason::Shutdown));
    let p = previous(&[("dmesg-ramoops-0", REBOOT.to_vec())], RAMOOPS);
    assert_eq!((p.ending, p.ending.name()), (Ending::Reboot, "reboot"));
    assert_eq!(p.detail, b"Shutdown dump, keel's marker in it");
    let kernel = stream(&p, false);
    assert_eq!(kernel.len(), REBOOT.iter().filter(|&&b| b == b'\n').count() - 1, "every line but the header");
    assert!(kernel[0].starts_with("0.000000 Linux version 6.1.0-57-amd64"), "{}", kernel[0]);
    assert_eq!(kernel.last().unwrap(), "2.323598 reboot: Restarting system");
    let keel = stream(&p, true);
    assert_eq!(&keel[keel.len() - 3..], ["2.312656 remounted / read-only", "2.314677 clean reboot", "2.314810 reboot"]);
    assert!(keel.contains(&"2.286821 reboot requested (debug client)".to_string()));
    assert!(!keel.iter().any(|l| l.contains("Preparing to enter system sleep state")), "only keel's lines");
}

#[test]
fn real_records_of_a_panic() {
    let p = previous(&[("dmesg-ramoops-1", EMERGENCY.to_vec()), ("dmesg-ramoops-0", PANIC.to_vec())], RAMOOPS);
    assert_eq!((p.ending.name(), &p.detail[..]), ("kernel panic", &b"Panic dump"[..]));
    let kernel = stream(&p, false);
    assert_eq!(kernel.len(), PANIC.iter().filter(|&&b| b == b'\n').count() - 1, "the emergency restart's dump adds nothing");
    assert_eq!(kernel.iter().filter(|l| l.contains("Kernel panic - not syncing: sysrq triggered crash")).count(), 1);
    assert_eq!(kernel.last().unwrap(), "2.970648 Kernel Offset: disabled");
    // This boot's keel said how the boot before ended; no marker of its own.
    let keel = stream(&p, true);
    assert_eq!(keel[0], "2.645705 previous boot ended: reboot (Shutdown dump, keel's marker in it)");
    assert_eq!(keel.last().unwrap(), "2.688012 svc shell: waiting -> ready");
    // The emergency restart's dump alone: an emergency restart.
    let p = previous(&[("dmesg-ramoops-1", EMERGENCY.to_vec())], RAMOOPS);
    assert_eq!((p.ending, &p.detail[..]), (Ending::Emergency, &b"Emergency dump"[..]));
}
