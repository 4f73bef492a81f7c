use super::*;
use crate::devices::coldplug::Modaliases;
use std::collections::BTreeSet;

/// A subset of Debian 12's modules.alias and what kmod's `modprobe -R` answers for the
/// modaliases of two machines (testdata/kmod-reference.py made both).
const MODULES_ALIAS: &str = include_str!("../testdata/modules.alias");
const KMOD_LOOKUP: &str = include_str!("../testdata/kmod-lookup.txt");
/// glibc's fnmatch answers (testdata/fnmatch-glibc.py).
const GLIBC: &str = include_str!("../testdata/fnmatch-glibc.txt");

fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn norm(m: &[u8]) -> Vec<u8> {
    let mut m = m.to_vec();
    assert!(normalize(&mut m), "a valid modalias");
    m
}

/// The modaliases as coldplug holds them.
fn set(devices: &[&[u8]]) -> Modaliases {
    let mut set = Modaliases::new();
    for d in devices {
        set.insert(d).unwrap();
    }
    set
}

/// A pattern kmod can hold and file2alias could write: sets closed (normalize accepts
/// it), none empty, none with `[:`, `[=` or `[.` in it; no `\`.
fn holdable(p: &[u8]) -> bool {
    let mut copy = p.to_vec();
    if p.contains(&b'\\') || !normalize(&mut copy) {
        return false;
    }
    let mut rest = p;
    while let Some(open) = rest.iter().position(|&b| b == b'[') {
        let close = open + rest[open..].iter().position(|&b| b == b']').unwrap();
        let members = &rest[open + 1..close];
        if matches!(members, [] | [b'!' | b'^']) || members.windows(2).any(|w| w[0] == b'[' && b":=.".contains(&w[1])) {
            return false;
        }
        rest = &rest[close + 1..];
    }
    true
}

#[test]
fn parses_alias_lines() {
    let a = Alias::parse(b"alias pci:v00001AF4d00001042sv*sd*bc*sc*i* virtio_pci").unwrap().unwrap();
    assert_eq!((a.pattern, a.module), (&b"pci:v00001AF4d00001042sv*sd*bc*sc*i*"[..], &b"virtio_pci"[..]));
    let a = Alias::parse(b"  alias\tacpi*:PNP0C0C:*  button \r").unwrap().unwrap();
    assert_eq!((a.pattern, a.module), (&b"acpi*:PNP0C0C:*"[..], &b"button"[..]));
    for quiet in [&b""[..], b"   ", b"# Aliases extracted from modules themselves.", b"  # x"] {
        assert_eq!(Alias::parse(quiet), Ok(None));
    }
    use ParseError::*;
    let bad: &[(&[u8], ParseError)] = &[
        (b"alia pci:* x", NotAlias),
        (b"options x y=1", NotAlias),
        (b"alias", MissingPattern),
        (b"alias pci:*", MissingModule),
        (b"alias pci:* a b", TrailingWords),
        (b"alias pci:\x01* a", BadPattern),
        (b"alias pci:\xc3\xa9 a", BadPattern),
        (b"alias pci:* a/b", BadModule),
        (b"alias pci:* a:b", BadModule),
    ];
    for &(line, want) in bad {
        assert_eq!(Alias::parse(line), Err(want), "{:?}", String::from_utf8_lossy(line));
    }
    // Every line of the real file parses.
    for line in MODULES_ALIAS.lines() {
        assert!(Alias::parse(line.as_bytes()).is_ok(), "{line}");
    }
}

#[test]
fn fnmatch_agrees_with_glibc() {
    let (mut exact, mut matches, mut other) = (0, 0, 0);
    for line in GLIBC.lines() {
        let mut f = line.split('\t');
        let (want, pattern, text) = (f.next().unwrap() == "1", unescape(f.next().unwrap()), unescape(f.next().unwrap()));
        let got = fnmatch(&pattern, &text);
        let show = || format!("fnmatch({:?}, {:?})", String::from_utf8_lossy(&pattern), String::from_utf8_lossy(&text));
        if holdable(&pattern) && !text.contains(&0) {
            assert_eq!(got, want, "{}", show());
            exact += 1;
            matches += usize::from(want);
        } else {
            // What file2alias never writes: any answer, but no panic (above).
            other += 1;
        }
    }
    assert!(exact > 1400 && matches > 500 && other > 2500, "{exact} {matches} {other}");
}

#[test]
fn fnmatch_by_the_book() {
    let yes: &[(&[u8], &[u8])] = &[
        (b"", b""),
        (b"*", b""),
        (b"*", b"a/b.c"),
        (b"a?c", b"abc"),
        (b"a*", b"a"),
        (b"*c", b"abc"),
        (b"a*b*c", b"aXbYbZc"),
        (b"[a-c]x", b"bx"),
        (b"[!a-c]", b"d"),
        (b"[^a-c]", b"d"),
        (b"[a-]", b"-"),
        (b"[-a]", b"-"),
        (b"[a-cx-z]", b"y"),
        (b"[[]", b"["),
        (b"*?", b"a"),
        (b"a-b", b"a-b"),
        // Not an escape: file2alias writes no `\`.
        (b"a\\b", b"a\\b"),
        (b"pci:v00001AF4d*sv*", b"pci:v00001AF4d00001042sv00001AF4"),
    ];
    let no: &[(&[u8], &[u8])] = &[
        (b"", b"a"),
        (b"?", b""),
        (b"a", b"A"),
        (b"[!a]", b"a"),
        (b"[c-a]", b"b"),
        (b"\\*", b"*"),
        (b"[a-", b"a"),
        (b"*??", b"a"),
        // Unclosed or empty sets match nothing (kmod refuses the first).
        (b"[ab", b"a"),
        (b"[ab", b"[ab"),
        (b"[]", b"]"),
        (b"[!]", b"a"),
        (b"a*[", b"ab"),
    ];
    for &(p, t) in yes {
        assert!(fnmatch(p, t), "{:?} {:?}", String::from_utf8_lossy(p), String::from_utf8_lossy(t));
    }
    for &(p, t) in no {
        assert!(!fnmatch(p, t), "{:?} {:?}", String::from_utf8_lossy(p), String::from_utf8_lossy(t));
    }
}

#[test]
fn patterns_made_to_be_slow_stay_bounded() {
    // Exponential for naive recursion, pattern x text here.
    let start = std::time::Instant::now();
    let text = [b'a'; 3000];
    assert!(!fnmatch(b"*a*a*a*a*a*a*a*a*a*a*a*a*b", &text));
    let mut yes = text.to_vec();
    yes.push(b'b');
    assert!(fnmatch(b"*a*a*a*a*a*a*a*a*a*a*a*a*b", &yes));
    // Unclosed brackets after a star rescan the pattern at every byte: pattern x text.
    let mut pattern = b"*".to_vec();
    pattern.extend_from_slice(&[b'['; 2000]);
    assert!(!fnmatch(&pattern, &[b'a'; 2000]));
    assert!(start.elapsed() < std::time::Duration::from_secs(5), "{:?}", start.elapsed());
}

#[test]
fn normalizes_like_kmod() {
    let normalized = |s: &[u8]| {
        let mut s = s.to_vec();
        normalize(&mut s).then_some(s)
    };
    assert_eq!(normalized(b"platform:reg-dummy").unwrap(), b"platform:reg_dummy");
    assert_eq!(normalized(b"usb:v1-2d0[0-2]*x-y").unwrap(), b"usb:v1_2d0[0-2]*x_y");
    assert_eq!(normalized(b"a[-]-").unwrap(), b"a[-]_");
    // Inside a set `[` is a byte, and the first `]` ends it.
    assert_eq!(normalized(b"a[[-]-").unwrap(), b"a[[-]_");
    assert_eq!(normalized(b"pci:v*").unwrap(), b"pci:v*");
    for bad in [&b"a]"[..], b"a[b", b"[a]]", b"-[", b"x-]", b"[]]"] {
        assert_eq!(normalized(bad), None, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn kmod_matches_the_literal_head_as_bytes() {
    assert!(kmod_matches(b"virtio:d00000002v*", b"virtio:d00000002v00001AF4"));
    assert!(!kmod_matches(b"virtio:d00000002v*", b"virtio:d00000001v00001AF4"));
    assert!(kmod_matches(b"acpi*:PNP0C0C:*", b"acpi:PNP0C0C:"));
    assert!(kmod_matches(b"platform:serial8250", b"platform:serial8250"));
    assert!(!kmod_matches(b"platform:serial8250", b"platform:serial8250x"));
    assert!(!kmod_matches(b"platform:serial8250", b"platform:serial825"));
    // A modalias shorter than the 8 bytes the first compare reads.
    assert!(kmod_matches(b"acpi:*", b"acpi:"));
    assert!(!kmod_matches(b"acpi:X", b"acpi:"));
    assert!(kmod_matches(b"a?", b"ab"));
    assert!(kmod_matches(b"[ab]", b"b"));
    assert!(!kmod_matches(b"", b"a"));
}

/// (modalias, modules kmod resolves it to) from the reference.
fn reference() -> Vec<(&'static str, BTreeSet<&'static str>)> {
    KMOD_LOOKUP
        .lines()
        .map(|l| {
            let (m, mods) = l.split_once('\t').unwrap();
            (m, mods.split_whitespace().collect())
        })
        .collect()
}

#[test]
fn resolves_modaliases_as_kmod_does() {
    let aliases: Vec<Alias> = MODULES_ALIAS.lines().filter_map(|l| Alias::parse(l.as_bytes()).unwrap()).collect();
    let patterns: Vec<(Vec<u8>, &[u8])> = aliases
        .iter()
        .filter_map(|a| {
            let mut p = a.pattern.to_vec();
            normalize(&mut p).then_some((p, a.module))
        })
        .collect();
    assert!(patterns.len() > 2000);
    assert!(patterns.iter().all(|(p, _)| holdable(p)), "file2alias's patterns are what fnmatch knows");
    let reference = reference();
    assert!(reference.len() > 60);
    for (modalias, want) in &reference {
        let device = norm(modalias.as_bytes());
        let got: BTreeSet<&str> = patterns
            .iter()
            .filter(|(p, _)| {
                let head = p.iter().position(|&b| matches!(b, b'*' | b'?' | b'[')).unwrap_or(p.len());
                let m = device.get(..head) == Some(&p[..head]) && fnmatch(&p[head..], &device[head..]);
                assert_eq!(m, kmod_matches(p, &device));
                m
            })
            .map(|(_, module)| std::str::from_utf8(module).unwrap())
            .collect();
        assert_eq!(&got, want, "{modalias}");
    }
}

/// Feed `text` to a matcher over `devices`: (modules found, in order, and the summary).
fn match_text(devices: &[&[u8]], text: &str) -> (Vec<String>, Summary) {
    let devices = set(devices);
    let mut found = Found::new();
    let mut matcher = AliasMatcher::new(devices.iter(), &mut found);
    for line in text.lines() {
        matcher.feed(&mut line.as_bytes().to_vec());
    }
    let found = matcher.modules().map(|m| String::from_utf8(m.to_vec()).unwrap()).collect();
    (found, matcher.summary)
}

#[test]
fn the_matcher_finds_each_module_once_for_a_machine() {
    let reference = reference();
    let devices: Vec<&[u8]> = reference.iter().map(|(m, _)| m.as_bytes()).collect();
    let (found, summary) = match_text(&devices, MODULES_ALIAS);
    // The matcher normalizes names (kmod's `-` is `_`); the reference has them as files do.
    let want: BTreeSet<String> = reference.iter().flat_map(|(_, mods)| mods.iter().map(|m| m.replace('-', "_"))).collect();
    assert_eq!(found.iter().cloned().collect::<BTreeSet<_>>(), want);
    assert_eq!(found.len(), want.len(), "each module once");
    assert_eq!(summary.lines as usize, MODULES_ALIAS.lines().count());
    assert_eq!((summary.bad_lines, summary.left_out), (0, 0));
}

#[test]
fn the_matcher_counts_what_it_cannot_take() {
    let devices: [&[u8]; 2] = [b"platform:reg_dummy", b"pci:v00001AF4d00001042sv00001AF4sd00001042bc01sc80i00"];
    let text = "alias platform:reg-dummy reg_dummy\nnot a line\nalias pci:v[1 broken\nalias pci:v[1* x\nalias pci:]* x\n\
                alias pci:v00001AF4d* virtio-pci\nalias pci:* virtio_pci\n# a comment]\n";
    let (found, summary) = match_text(&devices, text);
    assert_eq!(found, ["reg_dummy", "virtio_pci"]);
    assert_eq!(summary, Summary { lines: 8, bad_lines: 4, left_out: 0, devices_left_out: 0 });
    // More modules than it holds: the rest are counted, not lost silently.
    let many: String = (0..FOUND_BYTES / 6 + 3).map(|i| format!("alias platform:* m{i:04}\n")).collect();
    let (found, summary) = match_text(&devices, &many);
    assert_eq!(found.len(), FOUND_BYTES / 6);
    assert_eq!(summary.left_out, 3);
    // More devices than it holds: counted.
    let names: Vec<String> = (0..MAX_DEVICES + 2).map(|i| format!("platform:d{i}")).collect();
    let names: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
    let (found, summary) = match_text(&names, "alias platform:d1 one\nalias platform:d257 last");
    assert_eq!((found, summary.devices_left_out), (vec!["one".to_string()], 2));
}

#[test]
fn streams_the_file_from_a_modules_directory() {
    let dir = std::env::temp_dir().join(format!("keel-alias-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("modules.alias"), MODULES_ALIAS).unwrap();
    let devices: [&[u8]; 3] = [b"virtio:d00000001v00001AF4", b"platform:pcspkr", b"acpi:LNXPWRBN:"];
    let held = set(&devices);
    let (mut found_here, mut none) = (Found::new(), Found::new());
    let mut matcher = AliasMatcher::new(held.iter(), &mut found_here);
    match_file(dir.to_str().unwrap().as_bytes(), &mut matcher).unwrap();
    let missing = match_file(b"/nonexistent-keel-dir", &mut AliasMatcher::new(held.iter(), &mut none));
    std::fs::remove_dir_all(&dir).unwrap();
    let (found, _) = match_text(&devices, MODULES_ALIAS);
    assert_eq!(matcher.modules().map(|m| String::from_utf8(m.to_vec()).unwrap()).collect::<Vec<_>>(), found);
    // What kmod resolves these three to, each once, in modules.alias order.
    let reference = reference();
    let want: BTreeSet<&str> = devices
        .iter()
        .flat_map(|d| reference.iter().find(|(m, _)| m.as_bytes() == *d).unwrap().1.iter().copied())
        .collect();
    assert_eq!(found.iter().map(|s| s.as_str()).collect::<BTreeSet<_>>(), want);
    assert_eq!(found.len(), 3);
    assert_eq!(missing, Err(rustix::io::Errno::NOENT));
}

use keel_proto::testutil::XorShift;

#[test]
fn random_input_never_panics() {
    let mut rng = XorShift(0xa11a_5e50_ff0d);
    let alphabet = b"ab*?[]!^\\-:.=_ \t\0#";
    for _ in 0..30000 {
        let p: Vec<u8> = (0..rng.below(24)).map(|_| alphabet[rng.below(alphabet.len())]).collect();
        let t: Vec<u8> = (0..rng.below(24)).map(|_| alphabet[rng.below(alphabet.len())]).collect();
        let matched = fnmatch(&p, &t);
        let _ = kmod_matches(&p, &t);
        assert!(fnmatch(b"*", &t));
        // Without wildcards only the same bytes match.
        if !p.iter().any(|b| b"*?[".contains(b)) {
            assert_eq!(matched, p == t);
        }
        let mut n = p.clone();
        if normalize(&mut n) {
            assert!(!n.contains(&b'-') || p.contains(&b'['));
        }
        let mut line = b"alias ".to_vec();
        line.extend_from_slice(&p);
        let _ = Alias::parse(&line);
        let _ = Alias::parse(&p);
    }
}
