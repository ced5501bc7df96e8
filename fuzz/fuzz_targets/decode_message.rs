//! Any bytes as a best-effort message datagram: decoded within its bounds or refused, never a
//! panic; what decodes encodes back to a datagram that decodes the same, and the protocol
//! core, which skips message frames, takes the same bytes without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swimring::wire::codec::{Transport, decode_message, encode_message, is_message};

fuzz_target!(|data: &[u8]| {
    let _ = is_message(data);
    if let Ok(msg) = decode_message(data, "") {
        assert!(!msg.from.is_empty() && msg.from.len() <= swimring::wire::MAX_NAME_LEN);
        let again = encode_message("", &msg);
        assert_eq!(decode_message(&again, "").unwrap(), msg);
    }
    swimring_fuzz::decode_and_feed(data, Transport::Datagram);
});
