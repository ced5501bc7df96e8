//! Property tests for the codec: every message round-trips, and arbitrary bytes never panic
//! or decode into anything that breaks a bound.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use proptest::prelude::*;
use swimring::wire::codec::{self, Limits, Transport};
use swimring::wire::forward::ForwardFrame;
use swimring::wire::user::{MessageDatagram, ReliableMessage};
use swimring::wire::{
    Ack, Alive, Dead, Epoch, Left, MAX_NAME_LEN, Member, Message, Nack, Ping, PingReq, PushPull,
    Reach, Reached, State, Suspect, Update,
};

fn limits() -> Limits {
    Limits {
        max_stream: 1 << 20,
        max_meta: 512,
        max_members: 64,
    }
}

fn name() -> impl Strategy<Value = String> {
    // Up to 16 chars of up to 4 bytes each: always within the 64-byte bound.
    "\\PC{1,16}"
}

fn addr() -> impl Strategy<Value = SocketAddr> {
    (any::<IpAddr>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(ip, port))
}

fn meta() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..=512).prop_map(Bytes::from)
}

fn state() -> impl Strategy<Value = State> {
    prop_oneof![
        Just(State::Alive),
        Just(State::Suspect),
        Just(State::Dead),
        Just(State::Left)
    ]
}

fn update() -> impl Strategy<Value = Update> {
    prop_oneof![
        (name(), any::<u64>(), any::<u32>(), addr(), meta()).prop_map(
            |(name, run, incarnation, addr, meta)| Update::Alive(Alive {
                name,
                run,
                incarnation,
                addr,
                meta
            })
        ),
        (name(), any::<u64>(), any::<u32>(), name(), reach_opt()).prop_map(
            |(name, run, incarnation, from, reach)| Update::Suspect(Suspect {
                name,
                run,
                incarnation,
                from,
                reach,
            })
        ),
        (name(), any::<u64>(), any::<u32>(), name()).prop_map(|(name, run, incarnation, from)| {
            Update::Dead(Dead {
                name,
                run,
                incarnation,
                from,
            })
        }),
        (name(), any::<u64>(), any::<u32>()).prop_map(|(name, run, incarnation)| {
            Update::Left(Left {
                name,
                run,
                incarnation,
            })
        }),
    ]
}

fn reach() -> impl Strategy<Value = Reach> {
    prop_oneof![Just(Reach::Refused), Just(Reach::HostUp)]
}

fn reach_opt() -> impl Strategy<Value = Option<Reach>> {
    prop::option::of(reach())
}

fn member_state() -> impl Strategy<Value = Member> {
    (name(), addr(), any::<u64>(), any::<u32>(), state(), meta()).prop_map(
        |(name, addr, run, incarnation, state, meta)| Member {
            name,
            addr,
            run,
            incarnation,
            state,
            meta,
        },
    )
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u32>(), name()).prop_map(|(seq, target)| Message::Ping(Ping { seq, target })),
        any::<u32>().prop_map(|seq| Message::Ack(Ack { seq })),
        any::<u32>().prop_map(|seq| Message::Nack(Nack { seq })),
        (any::<u32>(), name(), addr()).prop_map(|(seq, target, addr)| Message::PingReq(PingReq {
            seq,
            target,
            addr
        })),
        update().prop_map(Message::Update),
        (
            name(),
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec(member_state(), 0..8)
        )
            .prop_map(|(from, join, reply, members)| Message::PushPull(PushPull {
                from,
                join,
                reply,
                members
            })),
        any::<u64>().prop_map(|epoch| Message::Epoch(Epoch { epoch })),
        (any::<u32>(), reach()).prop_map(|(seq, reach)| Message::Reached(Reached { seq, reach })),
    ]
}

proptest! {
    #[test]
    fn every_message_round_trips(msgs in prop::collection::vec(message(), 0..6), label in "[a-z]{0,12}") {
        let bytes = codec::encode_messages(&label, &msgs);
        let env = codec::decode(&bytes, &label, &limits(), Transport::Stream).unwrap();
        prop_assert_eq!(env.messages, msgs);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        // Raw, and behind a valid header so the decoder gets past the magic.
        let mut framed = codec::MAGIC.to_vec();
        framed.push(codec::VERSION);
        framed.extend_from_slice(&bytes);
        for (input, t) in [
            (&bytes, Transport::Datagram),
            (&framed, Transport::Datagram),
            (&framed, Transport::Stream),
        ] {
            if let Ok(env) = codec::decode(input, "", &limits(), t) {
                for m in &env.messages {
                    prop_assert!(codec::validate(m, &limits()).is_ok());
                }
            }
        }
    }

    #[test]
    fn corrupted_packets_never_panic(
        msgs in prop::collection::vec(message(), 1..4),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = codec::encode_messages("", &msgs).to_vec();
        for (i, b) in flips {
            let at = i.index(bytes.len());
            bytes[at] ^= b;
        }
        if let Ok(env) = codec::decode(&bytes, "", &limits(), Transport::Datagram) {
            for m in &env.messages {
                prop_assert!(codec::validate(m, &limits()).is_ok());
            }
        }
    }

    #[test]
    fn messages_round_trip_within_their_bound_and_garbage_never_decodes_past_it(
        from in name(),
        body in prop::collection::vec(any::<u8>(), 0..1500),
        label in "[a-z]{0,12}",
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
    ) {
        let msg = MessageDatagram { from: from.clone(), body: body.into() };
        let bytes = codec::encode_message(&label, &msg);
        prop_assert!(codec::is_message(&bytes));
        prop_assert_eq!(codec::decode_message(&bytes, &label).unwrap(), msg.clone());
        // The bound is exact: the largest body that fits a datagram's room makes it full.
        let max = codec::max_message_body(&label, &from, bytes.len());
        prop_assert_eq!(max, msg.body.len());
        // The core skips it; a corrupted one decodes within bounds or is refused.
        let env = codec::decode(&bytes, &label, &limits(), Transport::Datagram).unwrap();
        prop_assert!(env.messages.is_empty());
        let mut bytes = bytes.to_vec();
        for (i, b) in flips {
            let at = i.index(bytes.len());
            bytes[at] ^= b;
        }
        if let Ok(m) = codec::decode_message(&bytes, &label) {
            prop_assert!(!m.from.is_empty() && m.from.len() <= MAX_NAME_LEN);
            prop_assert!(m.body.len() <= bytes.len());
        }
        let reliable = ForwardFrame::Message(ReliableMessage { id: 1, from, body: msg.body });
        let bytes = codec::encode_forward(&label, &reliable);
        prop_assert!(codec::starts_forward_connection(&bytes));
        prop_assert_eq!(codec::decode_forward(&bytes, &label, 1 << 20).unwrap(), reliable);
    }
}
