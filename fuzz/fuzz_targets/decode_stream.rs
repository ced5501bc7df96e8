//! Any bytes as a stream payload (push-pull, fallback probe): refused or taken, never a
//! panic, and a reply is built for whatever asks for one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swimring::wire::codec::Transport;

fuzz_target!(|data: &[u8]| swimring_fuzz::decode_and_feed(data, Transport::Stream));
