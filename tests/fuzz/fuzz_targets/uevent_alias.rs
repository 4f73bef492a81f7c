//! Device decoders (src/devices): kernel uevents, modules.alias lines and the glob matcher
//! with pattern and text both arbitrary. Nothing may panic or run away (the matcher has a
//! work limit); what parses comes back unchanged through emit, and the glob keeps the laws
//! fnmatch(3) has whatever the pattern: `*` matches all, an all-escaped text matches itself.
#![no_main]

use keel::devices::alias::{self, Alias, AliasMatcher};
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
    let matched = alias::fnmatch(pattern, text);
    let c_text = &text[..text.iter().position(|&b| b == 0).unwrap_or(text.len())];
    assert!(alias::fnmatch(b"*", c_text));
    if c_text.len() < 512 {
        let escaped: Vec<u8> = c_text.iter().flat_map(|&b| [b'\\', b]).collect();
        assert!(alias::fnmatch(&escaped, c_text), "an escaped text matches itself");
    }
    // No wildcard and no `\` in the pattern: only the same bytes match.
    let c_pattern = &pattern[..pattern.iter().position(|&b| b == 0).unwrap_or(pattern.len())];
    if !c_pattern.iter().any(|b| b"*?[\\".contains(b)) {
        assert_eq!(matched, c_pattern == c_text);
    }
    let _ = alias::kmod_matches(pattern, text);
    let mut buf = [0u8; 256];
    if let Some(normalized) = alias::normalize(pattern, &mut buf) {
        assert_eq!(normalized.len(), pattern.len());
    }

    // Lines as modules.alias; the ones starting `device ` are the modaliases to match.
    let devices: Vec<&[u8]> = data.split(|&b| b == b'\n').filter_map(|l| l.strip_prefix(b"device ")).take(64).collect();
    let mut matcher = AliasMatcher::new(&devices);
    let mut reported: Vec<Vec<u8>> = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        if let Ok(Some(a)) = Alias::parse(line) {
            assert!(!a.pattern.is_empty() && keel::boot::modules::valid_name(a.module));
        }
        matcher.feed(line, &mut |device, module| {
            assert!(devices.contains(&device));
            assert!(!reported.iter().any(|m| keel::boot::modules::names_equal(m, module)), "a module reported twice");
            reported.push(module.to_vec());
        });
    }
    assert_eq!(matcher.modules().count(), reported.len());
});
