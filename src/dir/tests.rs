use super::*;
use keel_proto::testutil::XorShift;
use rustix::fd::AsFd;

/// One getdents64 batch of a real ext4 directory (Debian 12, x86_64) holding `sub/`,
/// `modalias` and `link -> modalias`: hash order, the last cookie i64::MAX.
const EXT4_BATCH: [u8; 128] = [
    0x01, 0x80, 0xa0, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa2, 0xa9, 0xed, 0xf6, 0xc1, 0xf9, 0xeb, 0x4d, //
    0x18, 0x00, 0x04, 0x2e, 0x00, 0x00, 0x00, 0x00, 0x31, 0x80, 0xa0, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0xa4, 0x61, 0x08, 0xc2, 0x4f, 0xde, 0xcc, 0x54, 0x18, 0x00, 0x0a, 0x6c, 0x69, 0x6e, 0x6b, 0x00, //
    0x11, 0x80, 0xa0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1e, 0xba, 0x40, 0x30, 0xd7, 0x64, 0x3a, 0x58, //
    0x18, 0x00, 0x04, 0x73, 0x75, 0x62, 0x00, 0x00, 0xa7, 0xc4, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x3d, 0x9b, 0x81, 0x67, 0x98, 0xb0, 0x50, 0x72, 0x18, 0x00, 0x04, 0x2e, 0x2e, 0x00, 0x00, 0x00, //
    0x21, 0x80, 0xa0, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, //
    0x20, 0x00, 0x08, 0x6d, 0x6f, 0x64, 0x61, 0x6c, 0x69, 0x61, 0x73, 0x00, 0x00, 0x00, 0x00, 0x00, //
];

#[test]
fn a_real_batch_reads_as_the_kernel_wrote_it() {
    let got: Vec<_> = records(&EXT4_BATCH).map(Result::unwrap).collect();
    let names: Vec<&[u8]> = got.iter().map(|e| e.file_name().to_bytes()).collect();
    assert_eq!(names, [&b"."[..], b"link", b"sub", b"..", b"modalias"]);
    let types: Vec<FileType> = got.iter().map(|e| e.file_type()).collect();
    use FileType::*;
    assert_eq!(types, [Directory, Symlink, Directory, Directory, RegularFile]);
    assert_eq!((got[0].ino(), got[0].next_entry_cookie()), (0xa08001, 0x4debf9c1f6eda9a2));
    assert_eq!((got[3].ino(), got[4].next_entry_cookie()), (0x3c4a7, i64::MAX as u64));
}

#[test]
fn emit_writes_the_kernels_bytes() {
    let mut out = vec![0xa5u8; EXT4_BATCH.len()];
    let mut at = 0;
    for e in records(&EXT4_BATCH).map(Result::unwrap) {
        e.emit(&mut Dirent::new_unchecked(&mut out[at..]));
        at += e.buffer_len();
    }
    assert_eq!(at, EXT4_BATCH.len());
    assert_eq!(out, EXT4_BATCH);
}

#[test]
fn records_the_kernel_could_not_write_are_errors() {
    let first = &EXT4_BATCH[..24];
    assert_eq!(Dirent::new_checked(&first[..18]).err(), Some(Error::Truncated), "no d_type");
    let mut short = first.to_vec();
    short[16] = 19; // d_reclen without room for the NUL
    assert_eq!(Dirent::new_checked(&short[..]).err(), Some(Error::Malformed));
    short[16] = 32; // past the batch
    assert_eq!(Dirent::new_checked(&short[..]).err(), Some(Error::Truncated));
    let mut no_nul = first.to_vec();
    no_nul[19..].fill(b'x');
    assert_eq!(Dirent::new_checked(&no_nul[..]).err(), Some(Error::Malformed));
    let long = |n: usize| {
        let mut r = vec![0u8; (field::NAME + n + 1).next_multiple_of(8)];
        let len = r.len() as u16;
        r[16..18].copy_from_slice(&len.to_ne_bytes());
        r[field::NAME..field::NAME + n].fill(b'x');
        r
    };
    assert_eq!(DirentRepr::parse(&Dirent::new_unchecked(&long(NAME_MAX)[..])).map(|e| e.name.to_bytes().len()), Ok(NAME_MAX));
    assert_eq!(DirentRepr::parse(&Dirent::new_unchecked(&long(NAME_MAX + 1)[..])), Err(Error::Malformed));
    // A bad record ends the listing after the good ones.
    let mut batch = EXT4_BATCH;
    batch[48 + 16] = 0; // `sub`: d_reclen 0 (a loop, were it trusted)
    let got: Vec<_> = records(&batch).map(|r| r.map(|e| e.file_name().to_bytes().to_vec())).collect();
    assert_eq!(got, [Ok(b".".to_vec()), Ok(b"link".to_vec()), Err(Error::Malformed)]);
}

#[test]
fn random_batches_never_panic_and_stay_in_bounds() {
    let mut rng = XorShift(0xd1e);
    for _ in 0..20_000 {
        let mut batch = EXT4_BATCH;
        for _ in 0..rng.below(4) + 1 {
            batch[rng.below(batch.len())] = rng.below(256) as u8;
        }
        let len = rng.below(batch.len() + 1);
        let mut covered = 0;
        for r in records(&batch[..len]) {
            let Ok(e) = r else { break };
            assert!(!e.file_name().to_bytes().contains(&0));
            covered += usize::from(Dirent::new_unchecked(&batch[covered..len]).reclen());
            assert!(covered <= len);
        }
    }
}

#[test]
fn a_directory_lists_what_std_lists() {
    let dir = std::env::temp_dir().join(format!("keel-dir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    // More names than one small batch holds, so the listing takes several getdents64.
    for i in 0..40 {
        std::fs::write(dir.join(format!("file-with-a-longer-name-{i:02}")), b"").unwrap();
    }
    std::os::unix::fs::symlink("sub", dir.join("link")).unwrap();
    let fd = rustix::fs::open(&dir, rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY, rustix::fs::Mode::empty()).unwrap();
    let mut buf = [0u8; 256];
    let mut entries = Dir::new(fd.as_fd(), &mut buf);
    let mut got = vec![];
    while let Some(e) = entries.next() {
        let e = e.unwrap();
        got.push((e.file_name().to_str().unwrap().to_owned(), e.file_type()));
    }
    got.sort_by_key(|(name, _)| name.clone());
    let mut want: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            let t = if t.is_symlink() { FileType::Symlink } else if t.is_dir() { FileType::Directory } else { FileType::RegularFile };
            (e.file_name().into_string().unwrap(), t)
        })
        .chain([(".".into(), FileType::Directory), ("..".into(), FileType::Directory)])
        .collect();
    want.sort_by_key(|(name, _)| name.clone());
    assert_eq!(got, want);
    std::fs::remove_dir_all(&dir).unwrap();
}
