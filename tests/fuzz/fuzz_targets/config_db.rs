//! The compiled configuration's decoder (keel-config/src/db.rs): no input may panic it, and
//! whatever it accepts must be readable whole. Half of the inputs get a valid checksum
//! appended, so the fuzzer reaches the checks behind it (sections, refs, every field).
#![no_main]

use keel_config::db::Db;
use libfuzzer_sys::fuzz_target;

fn read_all(db: &Db) {
    let sys = db.system();
    let _ = (sys.hostname.len(), sys.panic);
    for spec in db.services() {
        let _ = (spec.argv.iter().count(), spec.env.iter().count(), spec.deps.len(), spec.tty);
    }
    assert_eq!(db.services().count(), db.service_count(), "every checked record reads back");
    let _ = (db.channels().count(), db.modules().count(), db.root().device.len());
    for m in db.mounts() {
        let _ = (m.source.len(), m.target.len(), m.services.len());
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(db) = Db::parse(data) {
        read_all(&db);
    }
    let mut sealed = data.to_vec();
    let crc = keel_proto::crc::crc32(&sealed);
    sealed.extend_from_slice(&crc.to_le_bytes());
    if let Ok(db) = Db::parse(&sealed) {
        read_all(&db);
    }
});
