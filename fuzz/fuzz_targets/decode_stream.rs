//! Any bytes as a stream payload (push-pull, fallback probe): refused or taken, never a
//! panic, and a reply is built for whatever asks for one.
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
    let _ = codec::decode(data, "", &limits, Transport::Stream);
    let now = Instant::now();
    let id = Identity {
        name: "fuzz".into(),
        addr: "127.0.0.1:7946".parse().unwrap(),
        run: 1,
        meta: Default::default(),
    };
    let mut node = Swim::new(Config::lan(), id, 1, now).unwrap();
    let _ = node.handle_stream(now, data);
    while node.poll_transmit().is_some() {}
    while node.poll_event().is_some() {}
});
