//! keel's text parsers: /proc/self/mountinfo lines (src/mounts.rs), kernel command-line
//! words and keys (src/cmdline.rs) and debug channel specs (src/debug/channel.rs). No input
//! may panic them, and what they accept stays consistent.
#![no_main]

use keel::cmdline::{self, Config};
use keel::debug_channel::Spec;
use keel::mounts;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for entry in mounts::unmount_order(data) {
        assert!(entry.mount_point.iter().all(|&b| b != b' ' && b != b'\n'));
        let mut path = [0u8; 64];
        if let Some(p) = mounts::unescape(entry.mount_point, &mut path) {
            assert!(p.to_bytes().len() < 64);
        }
    }
    let mut config = Config::default();
    for word in cmdline::words(data) {
        assert!(!word.is_empty());
        let _ = config.apply(word);
    }
    let _ = config.debug_channels().count();
    let _ = config.extra_modules().count();
    for spec in data.split(|&b| b == b',') {
        if let Ok(Spec { kind: keel::debug_channel::Kind::Vsock(port), .. }) = Spec::parse(spec) {
            assert!(spec.starts_with(b"vsock:"), "port {port}");
        }
    }
});
