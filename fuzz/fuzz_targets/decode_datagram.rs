//! Any bytes as a datagram: the codec must refuse or decode without panicking, and the
//! protocol core must take whatever decodes.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use swimring::proto::{Config, Identity, Swim};
use swimring::wire::codec::{self, Limits, Transport};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_stream: 1 << 20,
        max_meta: 512,
        max_members: 1000,
    };
    let _ = codec::decode(data, "", &limits, Transport::Datagram);
    let now = Instant::now();
    let id = Identity {
        name: "fuzz".into(),
        addr: "127.0.0.1:7946".parse().unwrap(),
        run: 1,
        meta: Default::default(),
    };
    let mut node = Swim::new(Config::lan(), id, 1, now).unwrap();
    let _ = node.handle_datagram(now, "127.0.0.2:7946".parse().unwrap(), data);
    while node.poll_transmit().is_some() {}
    while node.poll_event().is_some() {}
});
