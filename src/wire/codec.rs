//! The one module that knows bincode: envelopes, frames, size arithmetic and decode bounds.
//!
//! Layout of every datagram and stream payload (bincode 2, `standard()` varint encoding):
//!
//! ```text
//! magic "SWRG" | version u8 | label: varint len + bytes | frame count: varint
//! then per frame: tag u8 | body: varint len + bytes (one bincode-encoded message)
//! ```
//!
//! Frames are encoded once and carried as [`Frame`]s, so a rumour retransmitted many times is
//! serialised only once, and the exact size of a packet is known before it is built. The
//! frames the protocol core never sees (forwarding, messages, watches) are in `beside`; user
//! events, the one frame a packet survives losing, in `user_event`.

use bincode::config::{self, Configuration, Limit, LittleEndian, Varint};
use bytes::Bytes;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::error::DecodeError;
use super::message::{
    Ack, Alive, Dead, Epoch, Left, Member, Message, Nack, Ping, PingReq, PushPull, Reached,
    Suspect, Update,
};
use super::{MAX_LABEL_LEN, MAX_NAME_LEN};
use user_event::{decode_user_event, validate_user_event};

mod beside;
mod user_event;

pub use beside::*;
pub use user_event::{max_user_event_len, user_event_frame_len};

/// First bytes of every swimring packet.
pub const MAGIC: [u8; 4] = *b"SWRG";
/// Wire format version. Peers refuse other versions; additions within a version go into new
/// frame tags or trailing fields, which older peers skip.
pub const VERSION: u8 = 1;
/// Largest datagram any peer may send (the IPv4 UDP payload limit).
pub const MAX_DATAGRAM: usize = 65_507;
/// Hard ceiling on a stream payload, whatever [`Limits::max_stream`] says.
pub const MAX_STREAM: usize = 64 << 20;

type Bounded<const N: usize> = Configuration<LittleEndian, Varint, Limit<N>>;
const DATAGRAM_CFG: Bounded<MAX_DATAGRAM> = config::standard().with_limit::<MAX_DATAGRAM>();
const STREAM_CFG: Bounded<MAX_STREAM> = config::standard().with_limit::<MAX_STREAM>();

/// Bounds applied to untrusted bytes before and after decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest stream payload accepted, in bytes (at most [`MAX_STREAM`]).
    pub max_stream: usize,
    /// Largest metadata accepted in a record.
    pub max_meta: usize,
    /// Most member records accepted in one push-pull.
    pub max_members: usize,
}

/// Which transport a payload came over: it decides the size bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A UDP datagram.
    Datagram,
    /// A TCP stream payload (push-pull, fallback probe).
    Stream,
}

/// A decoded packet: the messages it carried, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The messages, frames with unknown tags already skipped.
    pub messages: Vec<Message>,
    /// User event frames that did not decode: dropped alone, the rest of the packet kept
    /// (see `user_event`'s module docs for why).
    pub malformed_user_events: usize,
}

/// One encoded message, ready to be placed in any number of envelopes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    tag: u8,
    body: Bytes,
}

impl Frame {
    /// Bytes this frame occupies inside an envelope.
    pub fn encoded_len(&self) -> usize {
        1 + varint_len(self.body.len()) + self.body.len()
    }
}

#[derive(Serialize, Deserialize)]
struct RawEnvelope {
    magic: [u8; 4],
    version: u8,
    label: String,
    frames: Vec<Frame>,
}

mod tag {
    pub const PING: u8 = 1;
    pub const ACK: u8 = 2;
    pub const NACK: u8 = 3;
    pub const PING_REQ: u8 = 4;
    pub const ALIVE: u8 = 5;
    pub const SUSPECT: u8 = 6;
    pub const DEAD: u8 = 7;
    pub const LEFT: u8 = 8;
    pub const PUSH_PULL: u8 = 9;
    pub const EPOCH: u8 = 10;
    pub const FORWARD_REQUEST: u8 = 11;
    pub const FORWARD_REPLY: u8 = 12;
    pub const MESSAGE: u8 = 13;
    pub const RELIABLE_MESSAGE: u8 = 14;
    pub const REACHED: u8 = 15;
    pub const USER_EVENT: u8 = 16;
    pub const WATCH: u8 = 17;
}

/// Size of a length or count in bincode's varint encoding.
fn varint_len(n: usize) -> usize {
    varint_len_u64(n as u64)
}

/// [`varint_len`] of a 64-bit value.
fn varint_len_u64(n: u64) -> usize {
    match n {
        0..=250 => 1,
        251..=0xFFFF => 3,
        0x1_0000..=0xFFFF_FFFF => 5,
        _ => 9,
    }
}

fn body<T: Serialize>(tag: u8, value: &T) -> Frame {
    // Encoding plain data into a Vec cannot fail: no I/O, no limit on the encoder side.
    let bytes = bincode::serde::encode_to_vec(value, config::standard())
        .expect("encoding plain data into a Vec is infallible");
    Frame {
        tag,
        body: bytes.into(),
    }
}

/// Encodes a full-state exchange from borrowed members, as the frame
/// [`encode_frame`]`(&Message::PushPull(..))` would give for the same values: a node with
/// thousands of members sends one every reconnect and push-pull interval, and copying every
/// record first cost as much as encoding it.
pub fn push_pull_frame<'a>(
    from: &str,
    join: bool,
    reply: bool,
    members: impl IntoIterator<Item = &'a Member>,
) -> Frame {
    /// [`PushPull`] with borrowed fields: serde encodes a reference as the value it points
    /// to, so the bytes are the same.
    #[derive(Serialize)]
    struct Borrowed<'a> {
        from: &'a str,
        join: bool,
        reply: bool,
        members: Vec<&'a Member>,
    }
    let members = members.into_iter().collect();
    body(
        tag::PUSH_PULL,
        &Borrowed {
            from,
            join,
            reply,
            members,
        },
    )
}

/// Encodes one message as a frame.
pub fn encode_frame(msg: &Message) -> Frame {
    match msg {
        Message::Ping(m) => body(tag::PING, m),
        Message::Ack(m) => body(tag::ACK, m),
        Message::Nack(m) => body(tag::NACK, m),
        Message::PingReq(m) => body(tag::PING_REQ, m),
        Message::Update(Update::Alive(m)) => body(tag::ALIVE, m),
        Message::Update(Update::Suspect(m)) => body(tag::SUSPECT, m),
        Message::Update(Update::Dead(m)) => body(tag::DEAD, m),
        Message::Update(Update::Left(m)) => body(tag::LEFT, m),
        Message::PushPull(m) => body(tag::PUSH_PULL, m),
        Message::Epoch(m) => body(tag::EPOCH, m),
        Message::Reached(m) => body(tag::REACHED, m),
        Message::UserEvent(m) => body(tag::USER_EVENT, m),
    }
}

/// Bytes the frame of an [`Epoch`] with this value takes, as [`encode_frame`] would make it:
/// a size known without encoding it (a gossip round reserves room for it).
pub fn epoch_frame_len(epoch: u64) -> usize {
    let body = varint_len_u64(epoch);
    1 + varint_len(body) + body
}

/// Bytes an envelope with this label and these frames will take.
pub fn envelope_len<'a>(label: &str, frames: impl IntoIterator<Item = &'a Frame>) -> usize {
    let (count, bytes) = frames
        .into_iter()
        .fold((0, 0), |(c, b), f| (c + 1, b + f.encoded_len()));
    envelope_overhead(label, count) + bytes
}

/// Bytes of an envelope's header and frame count, before its frames.
pub fn envelope_overhead(label: &str, frame_count: usize) -> usize {
    MAGIC.len() + 1 + varint_len(label.len()) + label.len() + varint_len(frame_count)
}

/// Builds a packet from already encoded frames.
pub fn encode_envelope(label: &str, frames: Vec<Frame>) -> Bytes {
    let raw = RawEnvelope {
        magic: MAGIC,
        version: VERSION,
        label: label.to_owned(),
        frames,
    };
    bincode::serde::encode_to_vec(&raw, config::standard())
        .expect("encoding plain data into a Vec is infallible")
        .into()
}

/// Builds a packet from messages.
pub fn encode_messages<'a>(label: &str, msgs: impl IntoIterator<Item = &'a Message>) -> Bytes {
    encode_envelope(label, msgs.into_iter().map(encode_frame).collect())
}

fn malformed(e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Malformed(e.to_string())
}

fn decode_body<T: DeserializeOwned>(body: &[u8], transport: Transport) -> Result<T, DecodeError> {
    // Trailing bytes are fields added by a later version: ignored on purpose.
    match transport {
        Transport::Datagram => bincode::serde::decode_from_slice(body, DATAGRAM_CFG),
        Transport::Stream => bincode::serde::decode_from_slice(body, STREAM_CFG),
    }
    .map(|(v, _)| v)
    .map_err(malformed)
}

/// A suspect rumour, from this version (with `reach`) or an earlier one (without).
fn decode_suspect(body: &[u8], transport: Transport) -> Result<Suspect, DecodeError> {
    /// The fields every version sends.
    #[derive(Deserialize)]
    struct Before {
        name: String,
        run: u64,
        incarnation: u32,
        from: String,
    }
    decode_body::<Suspect>(body, transport).or_else(|_| {
        let b = decode_body::<Before>(body, transport)?;
        Ok(Suspect {
            name: b.name,
            run: b.run,
            incarnation: b.incarnation,
            from: b.from,
            reach: None,
        })
    })
}

/// Decodes and validates a packet. On error nothing was applied anywhere: the caller drops it.
pub fn decode(
    bytes: &[u8],
    expected_label: &str,
    limits: &Limits,
    transport: Transport,
) -> Result<Envelope, DecodeError> {
    let limit = match transport {
        Transport::Datagram => MAX_DATAGRAM,
        Transport::Stream => limits.max_stream.min(MAX_STREAM),
    };
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
    if bytes.len() < MAGIC.len() + 1 || bytes[..MAGIC.len()] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if bytes[MAGIC.len()] != VERSION {
        return Err(DecodeError::UnsupportedVersion(bytes[MAGIC.len()]));
    }
    let raw: RawEnvelope = decode_body(bytes, transport)?;
    if raw.label != expected_label {
        let mut got = raw.label;
        got.truncate(got.floor_char_boundary(MAX_LABEL_LEN));
        return Err(DecodeError::LabelMismatch {
            expected: expected_label.to_owned(),
            got,
        });
    }
    let mut messages = Vec::with_capacity(raw.frames.len());
    let mut malformed_user_events = 0;
    for frame in &raw.frames {
        let b = &frame.body[..];
        let msg = match frame.tag {
            tag::PING => Message::Ping(decode_body::<Ping>(b, transport)?),
            tag::ACK => Message::Ack(decode_body::<Ack>(b, transport)?),
            tag::NACK => Message::Nack(decode_body::<Nack>(b, transport)?),
            tag::PING_REQ => Message::PingReq(decode_body::<PingReq>(b, transport)?),
            tag::ALIVE => Update::Alive(decode_body::<Alive>(b, transport)?).into(),
            tag::SUSPECT => Update::Suspect(decode_suspect(b, transport)?).into(),
            tag::DEAD => Update::Dead(decode_body::<Dead>(b, transport)?).into(),
            tag::LEFT => Update::Left(decode_body::<Left>(b, transport)?).into(),
            tag::PUSH_PULL => Message::PushPull(decode_body::<PushPull>(b, transport)?),
            tag::EPOCH => Message::Epoch(decode_body::<Epoch>(b, transport)?),
            tag::REACHED => Message::Reached(decode_body::<Reached>(b, transport)?),
            tag::USER_EVENT => match decode_user_event(b, transport) {
                Ok(e) => Message::UserEvent(e),
                Err(_) => {
                    malformed_user_events += 1;
                    continue;
                }
            },
            _ => continue,
        };
        validate(&msg, limits)?;
        messages.push(msg);
    }
    Ok(Envelope {
        messages,
        malformed_user_events,
    })
}

fn check_name(field: &'static str, name: &str) -> Result<(), DecodeError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(DecodeError::Invalid {
            field,
            reason: format!("length {} not in 1..={MAX_NAME_LEN}", name.len()),
        });
    }
    Ok(())
}

fn check_meta(meta: &[u8], limits: &Limits) -> Result<(), DecodeError> {
    if meta.len() > limits.max_meta {
        return Err(DecodeError::Invalid {
            field: "meta",
            reason: format!("{} bytes exceeds {}", meta.len(), limits.max_meta),
        });
    }
    Ok(())
}

/// Checks the bounds a decoded message must respect.
pub fn validate(msg: &Message, limits: &Limits) -> Result<(), DecodeError> {
    match msg {
        Message::Ping(p) => check_name("ping.target", &p.target),
        Message::PingReq(p) => check_name("ping_req.target", &p.target),
        Message::Ack(_) | Message::Nack(_) | Message::Epoch(_) | Message::Reached(_) => Ok(()),
        Message::Update(Update::Alive(a)) => {
            check_name("alive.name", &a.name)?;
            check_meta(&a.meta, limits)
        }
        Message::Update(Update::Suspect(s)) => {
            check_name("suspect.name", &s.name)?;
            check_name("suspect.from", &s.from)
        }
        Message::Update(Update::Dead(d)) => {
            check_name("dead.name", &d.name)?;
            check_name("dead.from", &d.from)
        }
        Message::Update(Update::Left(l)) => check_name("left.name", &l.name),
        Message::UserEvent(e) => validate_user_event(e),
        Message::PushPull(p) => {
            check_name("push_pull.from", &p.from)?;
            if p.members.len() > limits.max_members {
                return Err(DecodeError::Invalid {
                    field: "push_pull.members",
                    reason: format!("{} records exceeds {}", p.members.len(), limits.max_members),
                });
            }
            p.members.iter().try_for_each(|m| {
                check_name("push_pull.member.name", &m.name)?;
                check_meta(&m.meta, limits)
            })
        }
    }
}

/// Encodes key=value tags as member metadata (serf-style tags).
pub fn encode_tags(tags: &std::collections::BTreeMap<String, String>) -> Bytes {
    bincode::serde::encode_to_vec(tags, config::standard())
        .expect("encoding plain data into a Vec is infallible")
        .into()
}

impl Member {
    /// The member's key=value tags: its metadata read as [`encode_tags`] writes it, and no
    /// tags when the metadata is empty or something else.
    pub fn tags(&self) -> std::collections::BTreeMap<String, String> {
        decode_tags(&self.meta).unwrap_or_default()
    }
}

/// Decodes metadata written by [`encode_tags`]. Empty metadata is no tags.
pub fn decode_tags(meta: &[u8]) -> Result<std::collections::BTreeMap<String, String>, DecodeError> {
    if meta.is_empty() {
        return Ok(Default::default());
    }
    decode_body(meta, Transport::Datagram)
}

#[cfg(test)]
mod tests {
    use crate::wire::forward::{ForwardFrame, ForwardReply, ForwardRequest, Outcome};
    use crate::wire::user::{MessageDatagram, ReliableMessage};

    #[test]
    fn epoch_frame_len_is_the_encoded_length() {
        for epoch in [
            0,
            1,
            250,
            251,
            0xFFFF,
            0x1_0000,
            0xFFFF_FFFF,
            1 << 40,
            u64::MAX,
        ] {
            let frame = encode_frame(&Message::Epoch(Epoch { epoch }));
            assert_eq!(epoch_frame_len(epoch), frame.encoded_len(), "epoch {epoch}");
        }
    }

    use super::*;
    use crate::wire::State;

    fn limits() -> Limits {
        Limits {
            max_stream: 1 << 20,
            max_meta: 512,
            max_members: 100,
        }
    }

    fn alive(name: &str, meta_len: usize) -> Message {
        Update::Alive(Alive {
            name: name.into(),
            run: 7,
            incarnation: 3,
            addr: "127.0.0.1:7946".parse().unwrap(),
            meta: vec![1; meta_len].into(),
        })
        .into()
    }

    #[test]
    fn a_borrowed_push_pull_encodes_like_an_owned_one() {
        let member = |name: &str, meta_len: usize| Member {
            name: name.into(),
            addr: "[::1]:7946".parse().unwrap(),
            run: 3,
            incarnation: 9,
            state: State::Suspect,
            meta: vec![7; meta_len].into(),
        };
        let members = vec![member("a", 0), member("bb", 300)];
        let owned = Message::PushPull(PushPull {
            from: "a".into(),
            join: true,
            reply: false,
            members: members.clone(),
        });
        assert_eq!(
            push_pull_frame("a", true, false, &members),
            encode_frame(&owned)
        );
    }

    #[test]
    fn predicted_sizes_match_encoded_sizes() {
        for meta_len in [0, 100, 250, 300, 512] {
            let frames: Vec<Frame> = (0..3)
                .map(|_| encode_frame(&alive("n", meta_len)))
                .collect();
            let predicted = envelope_len("label", &frames);
            assert_eq!(encode_envelope("label", frames).len(), predicted);
        }
    }

    #[test]
    fn foreign_label_is_refused() {
        let bytes = encode_messages("blue", [&Message::Ack(Ack { seq: 1 })]);
        let err = decode(&bytes, "green", &limits(), Transport::Datagram).unwrap_err();
        assert!(matches!(err, DecodeError::LabelMismatch { .. }), "{err}");
    }

    #[test]
    fn unknown_frames_and_trailing_fields_are_skipped() {
        let mut ping = encode_frame(&Message::Ping(Ping {
            seq: 9,
            target: "a".into(),
        }));
        let mut extended = ping.body.to_vec();
        extended.extend_from_slice(&[1, 2, 3]);
        ping.body = extended.into();
        let future = Frame {
            tag: 200,
            body: Bytes::from_static(b"later"),
        };
        let bytes = encode_envelope("", vec![future, ping]);
        let env = decode(&bytes, "", &limits(), Transport::Datagram).unwrap();
        assert_eq!(
            env.messages,
            vec![Message::Ping(Ping {
                seq: 9,
                target: "a".into()
            })]
        );
    }

    #[test]
    fn an_older_peers_suspect_reads_as_no_evidence() {
        let s = Suspect {
            name: "b".into(),
            run: 7,
            incarnation: 3,
            from: "a".into(),
            reach: None,
        };
        let older = (&s.name, s.run, s.incarnation, &s.from);
        let frame = body(tag::SUSPECT, &older);
        let bytes = encode_envelope("", vec![frame]);
        let env = decode(&bytes, "", &limits(), Transport::Datagram).unwrap();
        assert_eq!(env.messages, vec![Message::Update(Update::Suspect(s))]);
    }

    #[test]
    fn bounds_are_enforced() {
        let l = limits();
        let big_meta = encode_messages("", [&alive("n", 513)]);
        assert!(matches!(
            decode(&big_meta, "", &l, Transport::Datagram),
            Err(DecodeError::Invalid { field: "meta", .. })
        ));
        let long_name = encode_messages("", [&alive(&"x".repeat(65), 0)]);
        assert!(matches!(
            decode(&long_name, "", &l, Transport::Datagram),
            Err(DecodeError::Invalid { .. })
        ));
        let member = Member {
            name: "m".into(),
            addr: "[::1]:1".parse().unwrap(),
            run: 1,
            incarnation: 1,
            state: State::Alive,
            meta: Bytes::new(),
        };
        let pp = Message::PushPull(PushPull {
            from: "m".into(),
            join: true,
            reply: true,
            members: vec![member; 101],
        });
        let bytes = encode_messages("", [&pp]);
        assert!(matches!(
            decode(&bytes, "", &l, Transport::Stream),
            Err(DecodeError::Invalid {
                field: "push_pull.members",
                ..
            })
        ));
    }

    #[test]
    fn forward_frames_round_trip_and_are_told_from_gossip() {
        let req = ForwardFrame::Request(ForwardRequest {
            id: 7,
            hops: 1,
            key: Bytes::from_static(b"k"),
            body: Bytes::from_static(b"get"),
        });
        let bytes = encode_forward("c", &req);
        assert!(starts_forward_connection(&bytes));
        assert_eq!(decode_forward(&bytes, "c", 1 << 20).unwrap(), req);
        assert!(decode_forward(&bytes, "other", 1 << 20).is_err());
        assert!(decode_forward(&bytes, "c", 8).is_err());
        let gossip = encode_messages("c", [&Message::Ack(Ack { seq: 1 })]);
        assert!(!starts_forward_connection(&gossip));
        assert!(decode_forward(&gossip, "c", 1 << 20).is_err());
        // The core skips forward frames like any tag it does not know.
        let env = decode(&bytes, "c", &limits(), Transport::Stream).unwrap();
        assert!(env.messages.is_empty());
        let bad_owner = ForwardFrame::Reply(ForwardReply {
            id: 1,
            outcome: Outcome::NotOwner {
                owner: Some("x".repeat(65)),
            },
        });
        assert!(decode_forward(&encode_forward("c", &bad_owner), "c", 1 << 20).is_err());
        for garbage in [&b""[..], b"SWRG", b"SWRG\x01\xfe", b"SWRG\x01\x05ab"] {
            assert!(!starts_forward_connection(garbage));
            assert!(decode_forward(garbage, "c", 1 << 20).is_err());
        }
    }

    #[test]
    fn messages_round_trip_fill_their_datagram_and_are_skipped_by_the_core() {
        let msg = MessageDatagram {
            from: "a".into(),
            body: Bytes::from_static(b"hi"),
        };
        let bytes = encode_message("c", &msg);
        assert!(is_message(&bytes) && !starts_forward_connection(&bytes));
        assert_eq!(decode_message(&bytes, "c").unwrap(), msg);
        assert!(decode_message(&bytes, "other").is_err());
        let env = decode(&bytes, "c", &limits(), Transport::Datagram).unwrap();
        assert!(env.messages.is_empty(), "the core skips tag 13");
        for room in [40, 250, 300, 1400, 70_000] {
            let max = max_message_body("label", "sender", room);
            let fits = MessageDatagram {
                from: "sender".into(),
                body: vec![0; max].into(),
            };
            assert!(encode_message("label", &fits).len() <= room, "{room}");
            let over = MessageDatagram {
                body: vec![0; max + 1].into(),
                ..fits
            };
            assert!(encode_message("label", &over).len() > room, "{room}");
        }
        assert_eq!(max_message_body("label", "sender", 10), 0);
        // Two frames, another tag, a bad sender name: refused.
        let twice = encode_envelope("c", vec![body(tag::MESSAGE, &msg); 2]);
        let ack = encode_messages("c", [&Message::Ack(Ack { seq: 1 })]);
        let nameless = encode_message(
            "c",
            &MessageDatagram {
                from: String::new(),
                ..msg
            },
        );
        for bad in [&twice, &ack, &nameless] {
            assert!(decode_message(bad, "c").is_err());
        }
        let reliable = ForwardFrame::Message(ReliableMessage {
            id: 3,
            from: "a".into(),
            body: Bytes::from_static(b"hi"),
        });
        let bytes = encode_forward("c", &reliable);
        assert!(starts_forward_connection(&bytes) && !is_message(&bytes));
        assert_eq!(decode_forward(&bytes, "c", 1 << 20).unwrap(), reliable);
        assert!(
            decode(&bytes, "c", &limits(), Transport::Stream)
                .unwrap()
                .messages
                .is_empty()
        );
    }

    #[test]
    fn tags_round_trip() {
        let tags: std::collections::BTreeMap<String, String> =
            [("role".to_string(), "worker".to_string())].into();
        assert_eq!(decode_tags(&encode_tags(&tags)).unwrap(), tags);
        assert!(decode_tags(&[]).unwrap().is_empty());
        assert!(decode_tags(&[5, 1]).is_err());
    }

    #[test]
    fn garbage_is_an_error() {
        let l = limits();
        for bytes in [
            &b""[..],
            b"SWRG",
            b"SWRG\x02",
            b"nope nope",
            b"SWRG\x01\xff\xff\xff",
        ] {
            assert!(decode(bytes, "", &l, Transport::Datagram).is_err());
        }
        // A claimed length far beyond the packet must not allocate it.
        let mut huge = b"SWRG\x01\x00\xfd".to_vec();
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&huge, "", &l, Transport::Datagram).is_err());
    }

    /// A watch request is recognised for its own mesh only, and nothing else passes for one;
    /// the core skips its frame like any tag it does not know.
    #[test]
    fn a_watch_request_is_known_by_its_label_and_tag() {
        let w = encode_watch("c");
        assert!(is_watch(&w, "c"));
        assert!(!is_watch(&w, "other"));
        assert!(!is_watch(&w[..w.len() - 1], "c"));
        let gossip = encode_messages("c", [&Message::Ack(Ack { seq: 1 })]);
        assert!(!is_watch(&gossip, "c"));
        let with_body = encode_envelope("c", vec![body(tag::WATCH, &7u8)]);
        assert!(!is_watch(&with_body, "c"));
        let long = encode_watch(&"l".repeat(MAX_LABEL_LEN));
        assert!(is_watch(&long, &"l".repeat(MAX_LABEL_LEN)));
        let env = decode(&w, "c", &limits(), Transport::Stream).unwrap();
        assert!(env.messages.is_empty());
    }
}
