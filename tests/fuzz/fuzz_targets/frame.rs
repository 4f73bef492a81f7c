//! The debug protocol's deframers (keel-proto/src/deframe.rs): no input, cut into reads of any
//! size, may panic them; every frame they give is good (parses again, re-emits to the same
//! body), and the text the shared-line splitter gives is the input without its frames.
#![no_main]

use keel_proto::{self as proto, ApcSplitter, BinaryDeframer, FrameRepr, Piece, MAX_BODY};
use libfuzzer_sys::fuzz_target;

/// The frame is good: re-emitting gives a body that parses back to the same frame.
fn check(f: &FrameRepr, cap: usize) {
    assert!(f.buffer_len() <= cap.min(MAX_BODY));
    let mut body = [0xa5u8; MAX_BODY + 1];
    let n = f.emit(&mut body).expect("a good frame emits");
    assert_eq!(n, f.buffer_len());
    assert_eq!(body[n], 0xa5, "emit wrote past buffer_len");
    assert_eq!(proto::parse_body(&body[..n]), Ok(*f));
    let _ = f.message();
    // Both line forms of it decode to it again.
    let mut line = [0u8; proto::MAX_APC_LEN];
    let len = proto::emit_binary(&body[..n], &mut line).unwrap();
    assert_eq!(len, proto::binary_len(&body[..n]));
    let mut d = BinaryDeframer::<MAX_BODY>::new();
    let mut rest = &line[..len];
    assert_eq!(d.next(&mut rest), Some(*f));
    let len = proto::emit_apc(&body[..n], &mut line).unwrap();
    let mut s = ApcSplitter::<MAX_BODY>::new();
    let mut rest = &line[..len];
    assert_eq!(s.next(&mut rest), Some(Piece::Frame(*f)));
}

/// Feed `data` in reads of `chunk` bytes to every deframer, checking what comes out.
fn run(data: &[u8], chunk: usize) {
    let mut big = BinaryDeframer::<MAX_BODY>::new();
    let mut small = BinaryDeframer::<16>::new();
    let mut split = ApcSplitter::<MAX_BODY>::new();
    let mut split_small = ApcSplitter::<16>::new();
    let mut text = Vec::new();
    for read in data.chunks(chunk) {
        let mut rest = read;
        while let Some(f) = big.next(&mut rest) {
            check(&f, MAX_BODY);
        }
        let mut rest = read;
        while let Some(f) = small.next(&mut rest) {
            check(&f, 16);
        }
        let mut rest = read;
        while let Some(p) = split.next(&mut rest) {
            match p {
                Piece::Text(t) => {
                    assert!(!t.is_empty());
                    text.extend_from_slice(t);
                }
                Piece::Frame(f) => check(&f, MAX_BODY),
            }
        }
        let mut rest = read;
        while let Some(p) = split_small.next(&mut rest) {
            if let Piece::Frame(f) = p {
                check(&f, 16);
            }
        }
    }
    // Text is never made up: with no ESC in the input, it is all of the input.
    if !data.contains(&0x1b) {
        assert_eq!(text, data);
    }
    assert!(text.len() <= data.len());
    // Each frame is counted once: at its 0x00, or when it overflowed (maybe with no 0x00 yet).
    let zeros = data.iter().filter(|&&b| b == 0).count() as u32;
    let st = big.stats();
    assert!(st.total() <= zeros + 1, "{st:?}");
}

/// The input's segments between 0xfe bytes: a segment starting with an odd byte becomes a
/// good frame (type = that byte, payload = the rest) in binary or APC form, the others stay
/// noise or text. The fuzzer cannot guess CRCs; this gives it good frames to cut up.
fn with_frames(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, seg) in data.split(|&b| b == 0xfe).enumerate() {
        match seg.split_first() {
            Some((&t, payload)) if t & 1 == 1 => {
                let payload = &payload[..payload.len().min(proto::MAX_PAYLOAD)];
                let repr = FrameRepr { seq: i as u16, msg_type: t, payload };
                let mut body = [0u8; MAX_BODY];
                let n = repr.emit(&mut body).unwrap();
                let mut line = [0u8; proto::MAX_APC_LEN];
                let len = if t & 2 == 0 {
                    proto::emit_binary(&body[..n], &mut line).unwrap()
                } else {
                    proto::emit_apc(&body[..n], &mut line).unwrap()
                };
                out.extend_from_slice(&line[..len]);
            }
            _ => out.extend_from_slice(seg),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the read size; small buffers reach the oversize paths.
    let (chunk, data) = match data.split_first() {
        Some((&c, rest)) => (usize::from(c % 64) + 1, rest),
        None => (1, data),
    };
    run(data, chunk);
    run(&with_frames(data), chunk);
});
