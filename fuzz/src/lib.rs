//! What the decoding targets share: bounds like a real node's, and a fresh node to feed.

use std::time::Instant;

use swimring::proto::{Config, Identity, Swim};
use swimring::wire::codec::{self, Limits, Transport};

/// Decodes `data` as `transport` with a node's bounds, then hands it to a fresh node: the
/// codec must refuse or decode without panicking, and the core must take whatever decodes.
pub fn decode_and_feed(data: &[u8], transport: Transport) {
    let limits = Limits {
        max_stream: 1 << 20,
        max_meta: 512,
        max_members: 1000,
    };
    let _ = codec::decode(data, "", &limits, transport);
    #[allow(clippy::disallowed_methods)] // one real instant as the node's epoch
    let now = Instant::now();
    let id = Identity {
        name: "fuzz".into(),
        addr: "127.0.0.1:7946".parse().expect("literal"),
        run: 1,
        meta: Default::default(),
    };
    let mut node = Swim::new(Config::lan(), id, 1, now).expect("valid config");
    let _ = match transport {
        Transport::Datagram => {
            node.handle_datagram(now, "127.0.0.2:7946".parse().expect("literal"), data)
        }
        Transport::Stream => node.handle_stream(now, data).map(|_| ()),
    };
    while node.poll_transmit().is_some() {}
    while node.poll_event().is_some() {}
    // User events (frame 16) are delivered from datagrams: a decoded one is within bounds.
    while let Some(e) = node.poll_user_event() {
        assert!(!e.name.is_empty() && e.name.len() <= swimring::wire::user::MAX_USER_EVENT_NAME);
        assert!(!e.from.is_empty() && e.from.len() <= swimring::wire::MAX_NAME_LEN);
    }
}
