//! Generic netlink, nlctrl and ACPI event decoders (src/power/netlink.rs, nlctrl.rs, acpi.rs)
//! and the evdev ones (src/power/evdev.rs): no input may panic them, and an event that parses
//! must come back unchanged through emit → parse.
#![no_main]

use keel::power::acpi::{self, AcpiEvent};
use keel::power::evdev;
use keel::power::netlink::{self, NlPacket};
use keel::power::nlctrl::{self, Family};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for msg in netlink::messages(data).flatten() {
        assert!(msg.msg_len() as usize <= data.len());
        // Any family id: take the message's own, so the fuzzer need not guess it.
        let family = msg.msg_type();
        if let Ok(event) = AcpiEvent::parse(&msg, family) {
            let mut out = [0xa5u8; 80];
            let len = event.emit(family, msg.seq(), &mut out).expect("a parsed event emits");
            assert_eq!(len, event.buffer_len());
            assert!(out[len..].iter().all(|&b| b == 0xa5), "emit wrote past buffer_len");
            let again = NlPacket::new_checked(&out[..len]).expect("an emitted message checks");
            assert_eq!(AcpiEvent::parse(&again, family), Ok(event));
        }
        if let Ok(f) = Family::parse(&msg) {
            let _ = f.group(acpi::ACPI_GROUP);
        }
        let _ = msg.error_code();
    }
    if let Ok(Some(f)) = nlctrl::parse_family_reply(data, 1) {
        let _ = f.group(acpi::ACPI_GROUP);
    }
    let _ = acpi::scan_events(data, 0x1a, |e| {
        let _ = e.is_power_button();
    });
    let _ = netlink::attrs(data).count();
    let _ = evdev::has_bit(data, evdev::KEY_POWER);
    let _ = evdev::power_presses(data);
});
