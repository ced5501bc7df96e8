//! Any bytes as a forward frame: decoded within its bounds or refused, never a panic; what
//! decodes encodes back to a frame that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swimring::wire::codec::{decode_forward, encode_forward, starts_forward_connection};

fuzz_target!(|data: &[u8]| {
    let _ = starts_forward_connection(data);
    if let Ok(frame) = decode_forward(data, "", 1 << 20) {
        let again = encode_forward("", &frame);
        assert_eq!(decode_forward(&again, "", 1 << 20).unwrap(), frame);
    }
});
