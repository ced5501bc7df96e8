//! Any bytes as a datagram: the codec must refuse or decode without panicking, and the
//! protocol core must take whatever decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swimring::wire::codec::Transport;

fuzz_target!(|data: &[u8]| swimring_fuzz::decode_and_feed(data, Transport::Datagram));
