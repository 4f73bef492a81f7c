//! Device decoders (src/devices): kernel uevents, modules.alias lines and the glob matcher
//! with pattern and text both arbitrary. Nothing may panic or run away (a match is at most
//! pattern x text steps); what parses comes back unchanged through emit, and the glob keeps
//! the laws fnmatch(3) has whatever the pattern: `*` matches all, a pattern without
//! wildcards only itself.
#![no_main]

use keel::devices::alias::{self, Alias, AliasMatcher};
use keel::devices::coldplug::Modaliases;
use keel::devices::uevent::{Packet, Uevent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The whole input as a datagram.
    let packet = Packet::new_unchecked(data);
    let _ = (packet.action_bytes(), packet.devpath(), packet.variables());
    if let Ok(event) = Uevent::from_bytes(data) {
        let mut out = [0u8; 4096];
        if let Ok(len) = event.emit(&mut out) {
            assert_eq!(&out[..len], data, "emit gives the datagram back");
            assert_eq!(Uevent::from_bytes(&out[..len]), Ok(event));
        }
        let _ = (event.subsystem(), event.modalias(), event.devname(), event.seqnum());
        assert!(event.variables().all(|(key, _)| !key.is_empty()));
    }

    // Pattern and text: split at the first newline.
    let (pattern, text) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    if pattern.len() < 1024 && text.len() < 1024 {
        let matched = alias::fnmatch(pattern, text);
        assert!(alias::fnmatch(b"*", text));
        // No wildcard in the pattern: only the same bytes match.
        if !pattern.iter().any(|b| b"*?[".contains(b)) {
            assert_eq!(matched, pattern == text);
        }
        let _ = alias::kmod_matches(pattern, text);
    }
    let mut normalized = pattern.to_vec();
    if alias::normalize(&mut normalized) {
        assert_eq!(normalized.len(), pattern.len());
    }

    // Lines as modules.alias; the ones starting `device ` are the modaliases to match.
    let mut devices = Modaliases::new();
    for d in data.split(|&b| b == b'\n').filter_map(|l| l.strip_prefix(b"device ")).take(64) {
        let _ = devices.insert(d);
    }
    let mut found = alias::Found::new();
    let mut matcher = AliasMatcher::new(devices.iter(), &mut found);
    for line in data.split(|&b| b == b'\n') {
        if let Ok(Some(a)) = Alias::parse(line) {
            assert!(!a.pattern.is_empty() && keel::boot::modules::valid_name(a.module));
        }
        matcher.feed(&mut line.to_vec());
    }
    let found: Vec<&[u8]> = matcher.modules().collect();
    for (i, m) in found.iter().enumerate() {
        assert!(!found[..i].contains(m), "a module found twice");
    }
});
