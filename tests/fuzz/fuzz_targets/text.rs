//! keel's text parsers: /proc/self/mountinfo lines (src/power/unmount.rs), /proc/meminfo's
//! Dirty + Writeback (src/power/meminfo.rs), kernel command-line words and keys
//! (src/config/cmdline.rs, the root words merged by src/root/plan.rs), mount options
//! (src/root/options.rs), debug channel specs (keel-config/src/channel.rs), /dev/kmsg
//! records (src/debug/kmsg.rs) and `Key: N kB` lines of /proc (src/debug/rss.rs).
//! No input may panic them, and what they accept stays consistent.
#![no_main]

use keel::config::cmdline::{self, Config};
use keel::debug::{kmsg, rss};
use keel_config::channel::Channel;
use keel::power::meminfo;
use keel::power::unmount as mounts;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for entry in mounts::unmount_order(data) {
        assert!(entry.mount_point.iter().all(|&b| b != b' ' && b != b'\n'));
        let mut path = [0u8; 64];
        if let Some(p) = mounts::unescape(entry.mount_point, &mut path) {
            assert!(p.to_bytes().len() < 64);
        }
    }
    if meminfo::pending_kib(data).is_ok() {
        // Both lines were there, whole.
        assert!(data.windows(7).any(|w| w == b"\nDirty:") || data.starts_with(b"Dirty:"));
        assert!(data.windows(10).any(|w| w == b"Writeback:") && data.windows(4).any(|w| w == b" kB\n"));
    }
    let mut config = Config::default();
    for word in cmdline::words(data) {
        assert!(!word.is_empty());
        let _ = config.apply(word);
    }
    let _ = config.debug_channels(core::iter::empty()).count();
    let _ = config.extra_modules().count();
    if let Some(plan) = keel::root::plan::Plan::new(&config.root, &keel_config::spec::Root::NONE) {
        assert_eq!(Some(plan.device()), config.root.text(b"root"));
        let _ = plan.spec();
    }
    let mut data_out = heapless::Vec::<u8, 64>::new();
    if let Some(_flags) = keel::root::options::split(data, rustix::mount::MountFlags::empty(), &mut data_out) {
        // What goes to the filesystem is the input's words, none of them empty.
        assert!(data_out.split(|&b| b == b',').all(|w| !w.is_empty() || data_out.is_empty()));
    }
    for spec in data.split(|&b| b == b',') {
        if let Ok(Channel { kind: keel_config::channel::Kind::Vsock(port), .. }) = Channel::parse(spec) {
            assert!(spec.starts_with(b"vsock:"), "port {port}");
        }
    }
    let mut record = data.to_vec();
    let (_, _, text) = kmsg::parse(&mut record);
    let whole = text.len();
    let text = kmsg::fit(text);
    assert!(text.len() <= kmsg::TEXT_MAX && (whole <= kmsg::TEXT_MAX) == (text.len() == whole));
    assert!(whole <= kmsg::TEXT_MAX || text.ends_with(kmsg::CUT));
    let _ = rss::kib_field(data, b"Rss:");
});
