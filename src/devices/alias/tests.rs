use super::*;
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
    let mut buf = vec![0u8; m.len()];
    normalize(m, &mut buf).expect("a valid modalias").to_vec()
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
    let (mut exact, mut unsupported) = (0, 0);
    for line in GLIBC.lines() {
        let mut f = line.split('\t');
        let (want, pattern, text) = (f.next().unwrap() == "1", unescape(f.next().unwrap()), unescape(f.next().unwrap()));
        let got = fnmatch(&pattern, &text);
        let show = || format!("fnmatch({:?}, {:?})", String::from_utf8_lossy(&pattern), String::from_utf8_lossy(&text));
        // `[:`, `[=` and `[.` are not supported: where they may be in a set, only a match
        // glibc would not make is wrong.
        if [b"[:", b"[=", b"[."].iter().any(|u| pattern.windows(2).any(|w| w == *u)) {
            assert!(!got || want, "{}", show());
            unsupported += 1;
        } else {
            assert_eq!(got, want, "{}", show());
            exact += 1;
        }
    }
    assert!(exact > 3000 && unsupported > 300, "{exact} {unsupported}");
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
        (b"[]]", b"]"),
        (b"[!]]", b"a"),
        (b"[a-]", b"-"),
        (b"\\*", b"*"),
        (b"\\a", b"a"),
        (b"[\\]]", b"]"),
        // An unclosed `[` is an ordinary byte.
        (b"[ab", b"[ab"),
        (b"*?", b"a"),
        (b"pci:v00001AF4d*sv*", b"pci:v00001AF4d00001042sv00001AF4"),
    ];
    let no: &[(&[u8], &[u8])] = &[
        (b"", b"a"),
        (b"?", b""),
        (b"a", b"A"),
        (b"[!a]", b"a"),
        (b"[c-a]", b"b"),
        (b"\\", b"\\"),
        (b"a\\", b"a\\"),
        (b"[[:nosuch:]]", b"a"),
        // Classes, equivalence classes and collating symbols are not supported.
        (b"[[:digit:]]x", b"7x"),
        (b"[![:digit:]]", b"a"),
        (b"[[=a=]]", b"a"),
        (b"[a[.b.]]", b"a"),
        (b"[a-[.c.]]", b"b"),
        (b"[a-", b"a"),
        (b"*??", b"a"),
        (b"[ab", b"a"),
        (b"[[.ab.]]", b"a"),
    ];
    for &(p, t) in yes {
        assert!(fnmatch(p, t), "{:?} {:?}", String::from_utf8_lossy(p), String::from_utf8_lossy(t));
    }
    for &(p, t) in no {
        assert!(!fnmatch(p, t), "{:?} {:?}", String::from_utf8_lossy(p), String::from_utf8_lossy(t));
    }
    // C strings: a NUL ends pattern and text.
    assert!(fnmatch(b"ab\0c", b"ab"));
    assert!(fnmatch(b"ab", b"ab\0x"));
}

#[test]
fn patterns_made_to_be_slow_stay_bounded() {
    // Exponential for naive recursion, pattern x text here.
    let text = [b'a'; 3000];
    let mut work = 0;
    assert!(!glob(b"*a*a*a*a*a*a*a*a*a*a*a*a*b", &text, &mut work));
    assert!(work < WORK_LIMIT / 4, "{work}");
    let mut yes = text.to_vec();
    yes.push(b'b');
    work = 0;
    assert!(glob(b"*a*a*a*a*a*a*a*a*a*a*a*a*b", &yes, &mut work));
    // Unclosed brackets after a star rescan the pattern at every byte: the work limit
    // answers no match (what glibc would take ages to say) instead of taking ages.
    let mut pattern = b"*".to_vec();
    pattern.extend_from_slice(&[b'['; 2000]);
    let start = std::time::Instant::now();
    work = 0;
    assert!(!glob(&pattern, &[b'a'; 2000], &mut work));
    assert!(work > WORK_LIMIT);
    assert!(start.elapsed() < std::time::Duration::from_secs(2), "{:?}", start.elapsed());
}

#[test]
fn normalizes_like_kmod() {
    let mut buf = [0u8; 64];
    assert_eq!(normalize(b"platform:reg-dummy", &mut buf), Some(&b"platform:reg_dummy"[..]));
    assert_eq!(normalize(b"usb:v1-2d0[0-2]*x-y", &mut buf), Some(&b"usb:v1_2d0[0-2]*x_y"[..]));
    assert_eq!(normalize(b"a[-]-", &mut buf), Some(&b"a[-]_"[..]));
    assert_eq!(normalize(b"pci:v*", &mut []), Some(&b"pci:v*"[..]));
    for bad in [&b"a]"[..], b"a[b", b"[a]]", b"-[", b"x-]"] {
        assert_eq!(normalize(bad, &mut buf), None, "{:?}", String::from_utf8_lossy(bad));
    }
    // A copy that does not fit is refused, not cut.
    assert_eq!(normalize(b"a-b", &mut [0u8; 2]), None);
}

#[test]
fn kmod_matches_the_literal_head_as_bytes() {
    assert!(kmod_matches(b"virtio:d00000002v*", b"virtio:d00000002v00001AF4"));
    assert!(!kmod_matches(b"virtio:d00000002v*", b"virtio:d00000001v00001AF4"));
    assert!(kmod_matches(b"acpi*:PNP0C0C:*", b"acpi:PNP0C0C:"));
    assert!(kmod_matches(b"platform:serial8250", b"platform:serial8250"));
    assert!(!kmod_matches(b"platform:serial8250", b"platform:serial8250x"));
    assert!(!kmod_matches(b"platform:serial8250", b"platform:serial825"));
    // Before the first wildcard a `\` is just a byte in the index's trie (fnmatch alone
    // would take it as an escape).
    assert!(fnmatch(b"a\\b*", b"abc"));
    assert!(!kmod_matches(b"a\\b*", b"abc"));
    assert!(kmod_matches(b"a\\b*", b"a\\bc"));
    // After it, fnmatch's rules.
    assert!(kmod_matches(b"a*\\b", b"axb"));
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
    let mut buf = [0u8; MAX_PATTERN];
    let patterns: Vec<(Vec<u8>, &[u8])> =
        aliases.iter().filter_map(|a| Some((normalize(a.pattern, &mut buf)?.to_vec(), a.module))).collect();
    assert!(patterns.len() > 2000);
    let reference = reference();
    assert!(reference.len() > 60);
    let mut max_work = 0;
    for (modalias, want) in &reference {
        let device = norm(modalias.as_bytes());
        let got: BTreeSet<&str> = patterns
            .iter()
            .filter(|(p, _)| {
                let mut work = 0;
                let head = p.iter().position(|&b| matches!(b, b'*' | b'?' | b'[')).unwrap_or(p.len());
                let m = device.get(..head) == Some(&p[..head]) && glob(&p[head..], &device[head..], &mut work);
                max_work = max_work.max(work);
                assert_eq!(m, kmod_matches(p, &device));
                m
            })
            .map(|(_, module)| std::str::from_utf8(module).unwrap())
            .collect();
        assert_eq!(&got, want, "{modalias}");
    }
    // Real patterns are far from the work limit (the cpu modaliases take the most: 572).
    assert!(max_work < 2000, "{max_work}");
}

/// Feed `text` to a matcher over `devices`; (modules found, matches reported).
fn match_text<'d>(devices: &'d [&'d [u8]], text: &str) -> (Vec<String>, Vec<(String, String)>, Summary) {
    let mut matcher = AliasMatcher::new(devices);
    let mut reported = Vec::new();
    for line in text.lines() {
        matcher.feed(line.as_bytes(), &mut |d, m| {
            reported.push((String::from_utf8(d.to_vec()).unwrap(), String::from_utf8(m.to_vec()).unwrap()))
        });
    }
    let found = matcher.modules().map(|m| String::from_utf8(m.to_vec()).unwrap()).collect();
    (found, reported, matcher.summary)
}

#[test]
fn the_matcher_finds_each_module_once_for_a_machine() {
    let reference = reference();
    let devices: Vec<Vec<u8>> = reference.iter().map(|(m, _)| norm(m.as_bytes())).collect();
    let device_refs: Vec<&[u8]> = devices.iter().map(|d| &d[..]).collect();
    let (found, reported, summary) = match_text(&device_refs, MODULES_ALIAS);
    let want: BTreeSet<&str> = reference.iter().flat_map(|(_, mods)| mods.iter().copied()).collect();
    assert_eq!(found.iter().map(|s| s.as_str()).collect::<BTreeSet<_>>(), want);
    assert_eq!(found.len(), want.len(), "each module once");
    assert_eq!(reported.len(), found.len());
    for (device, module) in &reported {
        let (_, mods) = reference.iter().find(|(m, _)| norm(m.as_bytes()) == device.as_bytes()).unwrap();
        assert!(mods.contains(module.as_str()), "{device} {module}");
    }
    assert_eq!(summary.lines as usize, MODULES_ALIAS.lines().count());
    assert_eq!((summary.bad_lines, summary.left_out), (0, 0));
}

#[test]
fn the_matcher_counts_what_it_cannot_take() {
    let devices: [&[u8]; 2] = [b"platform:reg_dummy", b"pci:v00001AF4d00001042sv00001AF4sd00001042bc01sc80i00"];
    let text = "alias platform:reg-dummy reg_dummy\nnot a line\nalias pci:v[1 broken\nalias pci:v00001AF4d* virtio-pci\nalias pci:* virtio_pci\n";
    let (found, reported, summary) = match_text(&devices, text);
    assert_eq!(found, ["reg_dummy", "virtio-pci"]);
    assert_eq!(reported[1], (String::from_utf8(devices[1].to_vec()).unwrap(), "virtio-pci".to_string()));
    assert_eq!(summary, Summary { lines: 5, bad_lines: 2, left_out: 0, devices_left_out: 0 });
    // More modules than it holds: the rest are counted, not lost silently.
    let many: String = (0..MAX_FOUND + 3).map(|i| format!("alias platform:* m{i}\n")).collect();
    let (found, _, summary) = match_text(&devices, &many);
    assert_eq!(found.len(), MAX_FOUND);
    assert_eq!(summary.left_out, 3);
}

#[test]
fn streams_the_file_from_a_modules_directory() {
    let dir = std::env::temp_dir().join(format!("keel-alias-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("modules.alias"), MODULES_ALIAS).unwrap();
    let devices: [&[u8]; 3] = [b"virtio:d00000001v00001AF4", b"platform:pcspkr", b"acpi:LNXPWRBN:"];
    let mut matcher = AliasMatcher::new(&devices);
    let mut reported = Vec::new();
    match_file(dir.to_str().unwrap().as_bytes(), &mut matcher, &mut |d, m| reported.push((d.to_vec(), m.to_vec()))).unwrap();
    let missing = match_file(b"/nonexistent-keel-dir", &mut AliasMatcher::new(&devices), &mut |_, _| {});
    std::fs::remove_dir_all(&dir).unwrap();
    let (found, _, _) = match_text(&devices, MODULES_ALIAS);
    assert_eq!(matcher.modules().map(|m| String::from_utf8(m.to_vec()).unwrap()).collect::<Vec<_>>(), found);
    // What kmod resolves these three to, each once, in modules.alias order.
    let reference = reference();
    let want: BTreeSet<&str> = devices
        .iter()
        .flat_map(|d| reference.iter().find(|(m, _)| m.as_bytes() == *d).unwrap().1.iter().copied())
        .collect();
    assert_eq!(found.iter().map(|s| s.as_str()).collect::<BTreeSet<_>>(), want);
    assert_eq!(found.len(), 3);
    assert_eq!(reported.len(), 3);
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
        let _ = fnmatch(&p, &t);
        let _ = kmod_matches(&p, &t);
        let mut buf = [0u8; 32];
        if let Some(n) = normalize(&p, &mut buf) {
            assert_eq!(n.len(), p.len());
            assert!(!n.contains(&b'-') || p.contains(&b'['));
        }
        let mut line = b"alias ".to_vec();
        line.extend_from_slice(&p);
        let _ = Alias::parse(&line);
        let _ = Alias::parse(&p);
    }
}
