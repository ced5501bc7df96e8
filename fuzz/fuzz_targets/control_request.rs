//! Any bytes as a control endpoint request line: parsed or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swimring::control::Request;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = serde_json::from_slice::<Request>(data) {
        // What parsed serialises back and parses to the same request.
        let again = serde_json::to_vec(&req).unwrap();
        assert_eq!(serde_json::from_slice::<Request>(&again).unwrap(), req);
    }
});
