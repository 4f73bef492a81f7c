//! getdents64 records (src/dir.rs): no batch may panic the reader or step it past its end,
//! and a record that parses must come back unchanged through emit → parse.
#![no_main]

use keel::dir::{self, Dirent, DirentRepr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut at = 0;
    for r in dir::records(data) {
        let Ok(e) = r else { break };
        let d = Dirent::new_checked(&data[at..]).expect("a parsed record checks");
        at += usize::from(d.reclen());
        assert!(at <= data.len(), "stepped past the batch");
        let mut out = [0xa5u8; 300];
        let len = e.buffer_len();
        e.emit(&mut Dirent::new_unchecked(&mut out[..]));
        assert!(out[len..].iter().all(|&b| b == 0xa5), "emit wrote past buffer_len");
        let again = Dirent::new_checked(&out[..len]).expect("an emitted record checks");
        assert_eq!(DirentRepr::parse(&again), Ok(e));
        let _ = e.file_type();
    }
    let d = Dirent::new_unchecked(data);
    let _ = (d.ino(), d.offset(), d.kind(), d.name());
});
