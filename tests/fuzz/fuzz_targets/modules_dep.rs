//! modules.dep parsing, resolution and line streaming (src/boot/modules.rs): no input may panic
//! them; what parses is consistent, and a load list names each module once.
#![no_main]

use keel::boot::modules::{self, DepLine, LoadItem, Resolver};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for line in data.split(|&b| b == b'\n') {
        if let Ok(l) = DepLine::parse(line) {
            assert!(modules::module_name(l.path).is_some());
            assert!(l.deps().all(|d| modules::module_name(d).is_some()));
            assert_eq!(l.load_order().count(), l.deps().count() + 1);
        }
    }
    // Small capacities, so that every limit is reached.
    let mut resolver: Resolver<4, 512> = Resolver::new();
    for name in [&b"virtio_pci"[..], b"ext4", b"a", b"b-c", b"x"] {
        let _ = resolver.want(name);
    }
    // Stream the input through a small buffer, in reads of a size the input chooses.
    let chunk = data.first().map_or(1, |&b| usize::from(b % 31) + 1);
    let mut rest = data;
    let mut buf = [0u8; 48];
    let mut lines = 0usize;
    let _ = modules::for_each_line(
        &mut |b: &mut [u8]| -> Result<usize, ()> {
            let n = rest.len().min(chunk).min(b.len());
            b[..n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            Ok(n)
        },
        &mut buf,
        &mut |line| {
            lines += 1;
            assert!(!line.contains(&b'\n'));
            let _ = resolver.feed(line);
            true
        },
        &mut |_| {},
    );
    assert!(lines <= data.len() + 1);
    let mut list: heapless::Vec<LoadItem, 8> = heapless::Vec::new();
    let _ = resolver.plan(&mut list);
    for (i, item) in list.iter().enumerate() {
        assert!(list[..i].iter().all(|before| !modules::names_equal(before.name, item.name)));
    }
});
