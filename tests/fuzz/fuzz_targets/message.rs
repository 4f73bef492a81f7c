//! The debug protocol's messages (keel-proto/src/msg.rs): any type byte and payload parses or is
//! an error, never a panic; what parses emits exactly `buffer_len()` bytes that parse back
//! to the same message, inside a frame too.
#![no_main]

use keel_proto::{self as proto, Message, MAX_BODY, MAX_PAYLOAD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&msg_type, payload)) = data.split_first() else { return };
    let Ok(m) = Message::parse(msg_type, payload) else { return };
    assert_eq!(m.msg_type(), msg_type);
    let len = m.buffer_len();
    // Bytes after the last field are ignored, so the message is never longer than its input.
    assert!(len <= payload.len());
    let mut out = vec![0xa5u8; len + 16];
    match m.emit(&mut out) {
        Ok(n) => {
            assert_eq!(n, len);
            assert!(out[n..].iter().all(|&b| b == 0xa5), "emit wrote past buffer_len");
            assert_eq!(Message::parse(msg_type, &out[..n]), Ok(m));
            // Exactly buffer_len bytes is enough; one less is an error.
            assert_eq!(m.emit(&mut out[..n]), Ok(n));
            if n > 0 {
                assert_eq!(m.emit(&mut out[..n - 1]), Err(proto::Error::BufferTooSmall));
            }
            // In a frame.
            let mut body = [0u8; MAX_BODY];
            let b = proto::emit_message(0xbeef, &m, &mut body).expect("fits in a frame");
            let f = proto::parse_body(&body[..b]).unwrap();
            assert_eq!((f.seq, f.message()), (0xbeef, Ok(m)));
        }
        Err(e) => assert!(len > MAX_PAYLOAD && e == proto::Error::Oversized, "{e:?} for {m:?}"),
    }
    let _ = m.is_mutating();
});
