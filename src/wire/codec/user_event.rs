//! User events (frame 16): their bounds, their exact size, and the one frame kind a packet
//! survives losing.
//!
//! Every other frame that does not decode refuses its whole packet. A user event rides in
//! the same datagrams as probes and acks, and each peer retransmits it several times: if a
//! bad one (a bug, a later version's stricter or looser bound) refused its packet, the pings
//! and acks it travelled with would be lost too, and every member relaying it would look
//! silent and be suspected. So a user event that does not decode is dropped alone and
//! counted ([`Envelope::malformed_user_events`](super::Envelope::malformed_user_events)),
//! and the rest of its packet is applied.

use super::{DecodeError, Transport, check_name, decode_body, varint_len, varint_len_u64};
use crate::wire::user::{MAX_USER_EVENT_NAME, UserEvent};

/// Decodes one user event frame's body and checks its bounds.
pub(super) fn decode_user_event(body: &[u8], t: Transport) -> Result<UserEvent, DecodeError> {
    let e: UserEvent = decode_body(body, t)?;
    validate_user_event(&e)?;
    Ok(e)
}

/// The bounds a user event respects: a sender's name like any member's, and an event name
/// of 1 to [`MAX_USER_EVENT_NAME`] bytes. The payload is bounded by its datagram.
pub(super) fn validate_user_event(e: &UserEvent) -> Result<(), DecodeError> {
    check_name("user_event.from", &e.from)?;
    if e.name.is_empty() || e.name.len() > MAX_USER_EVENT_NAME {
        return Err(DecodeError::Invalid {
            field: "user_event.name",
            reason: format!("length {} not in 1..={MAX_USER_EVENT_NAME}", e.name.len()),
        });
    }
    Ok(())
}

/// Bytes the frame of a user event with these fields takes in an envelope, as
/// [`encode_frame`](super::encode_frame) makes it: a size known before encoding it.
pub fn user_event_frame_len(
    from: &str,
    run: u64,
    seq: u64,
    name_len: usize,
    payload_len: usize,
) -> usize {
    let body = varint_len(from.len())
        + from.len()
        + varint_len_u64(run)
        + varint_len_u64(seq)
        + varint_len(name_len)
        + name_len
        + varint_len(payload_len)
        + payload_len;
    1 + varint_len(body) + body
}

/// The most bytes of name and payload together that a user event from `from` (at `run`)
/// may carry so that its frame takes at most `room` bytes, whatever its sequence number (0
/// if not even an empty one fits). Counting the name's bytes with the payload's is exact up
/// to two bytes (one length prefix instead of two).
pub fn max_user_event_len(from: &str, run: u64, room: usize) -> usize {
    let len = |n| user_event_frame_len(from, run, u64::MAX, 0, n);
    // Each length prefix is at most 9 bytes, so this starts at most a few bytes too high.
    let mut n = room.saturating_sub(len(0));
    while n > 0 && len(n) > room {
        n -= 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::{
        Frame, Limits, body, decode, encode_envelope, encode_frame, envelope_len, tag,
    };
    use super::*;
    use crate::wire::{Message, Ping};

    fn event(payload_len: usize) -> UserEvent {
        UserEvent {
            from: "api-1".into(),
            run: 1_795_773_605_920,
            seq: 7,
            name: "deploy".into(),
            payload: vec![b'v'; payload_len].into(),
        }
    }

    fn limits() -> Limits {
        Limits {
            max_stream: 1 << 20,
            max_meta: 512,
            max_members: 100,
        }
    }

    #[test]
    fn a_user_event_round_trips_and_its_size_is_known_before_encoding() {
        for payload_len in [0, 3, 200, 250, 251, 1000] {
            let e = event(payload_len);
            let frame = encode_frame(&Message::UserEvent(e.clone()));
            let predicted = user_event_frame_len(&e.from, e.run, e.seq, e.name.len(), payload_len);
            assert_eq!(frame.encoded_len(), predicted, "payload {payload_len}");
            let bytes = encode_envelope("c", vec![frame]);
            let env = decode(&bytes, "c", &limits(), Transport::Datagram).unwrap();
            assert_eq!(env.messages, vec![Message::UserEvent(e)]);
            assert_eq!(env.malformed_user_events, 0);
        }
    }

    #[test]
    fn the_largest_user_event_fills_its_room_exactly() {
        for room in [40, 300, 578, 1400] {
            let max = max_user_event_len("api-1", 9, room);
            let e = UserEvent {
                from: "api-1".into(),
                run: 9,
                seq: u64::MAX,
                name: "n".into(),
                payload: vec![0; max - 1].into(),
            };
            let fits = encode_frame(&Message::UserEvent(e.clone())).encoded_len();
            // Safe, and at most a few bytes short (the length prefixes it assumed).
            assert!(fits <= room && fits + 4 >= room, "{room}: {fits}");
            let over = UserEvent {
                payload: vec![0; max + 3].into(),
                ..e
            };
            assert!(encode_frame(&Message::UserEvent(over)).encoded_len() > room);
        }
        assert_eq!(max_user_event_len("api-1", 9, 10), 0);
    }

    /// The fuzz corpus's seed is the frame this build encodes.
    #[test]
    fn the_fuzz_seed_is_a_user_event_datagram() {
        let seed = include_bytes!("../../../fuzz/corpus/decode_datagram/user_event");
        let env = decode(seed, "", &limits(), Transport::Datagram).unwrap();
        let e = UserEvent {
            from: "a".into(),
            run: 1,
            seq: 1,
            name: "deploy".into(),
            payload: Bytes::from_static(b"v42"),
        };
        assert_eq!(env.messages, vec![Message::UserEvent(e.clone())]);
        assert_eq!(
            &seed[..],
            &encode_envelope("", vec![encode_frame(&Message::UserEvent(e))])[..]
        );
    }

    /// A bad user event costs only itself: the ping beside it is still read, and the count
    /// says what was dropped. Anything else malformed still refuses the whole packet.
    #[test]
    fn a_malformed_user_event_is_dropped_alone() {
        let ping = encode_frame(&Message::Ping(Ping {
            seq: 3,
            target: "b".into(),
        }));
        let garbage = Frame {
            tag: tag::USER_EVENT,
            body: Bytes::from_static(&[0xfd, 0xff, 0xff]),
        };
        let nameless = body(
            tag::USER_EVENT,
            &UserEvent {
                name: String::new(),
                ..event(1)
            },
        );
        let long = body(
            tag::USER_EVENT,
            &UserEvent {
                name: "x".repeat(MAX_USER_EVENT_NAME + 1),
                ..event(1)
            },
        );
        let anonymous = body(
            tag::USER_EVENT,
            &UserEvent {
                from: String::new(),
                ..event(1)
            },
        );
        let frames = vec![garbage, nameless, ping.clone(), long, anonymous];
        assert_eq!(
            envelope_len("", &frames),
            encode_envelope("", frames.clone()).len()
        );
        let env = decode(
            &encode_envelope("", frames),
            "",
            &limits(),
            Transport::Datagram,
        )
        .unwrap();
        assert_eq!(env.malformed_user_events, 4);
        assert_eq!(
            env.messages,
            vec![Message::Ping(Ping {
                seq: 3,
                target: "b".into()
            })]
        );
        let bad_ping = Frame {
            tag: tag::PING,
            body: Bytes::from_static(&[0xfd]),
        };
        let whole = encode_envelope(
            "",
            vec![encode_frame(&Message::UserEvent(event(1))), bad_ping],
        );
        assert!(decode(&whole, "", &limits(), Transport::Datagram).is_err());
    }
}
