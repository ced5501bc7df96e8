//! The frames that travel beside the protocol's: forwarded requests and replies, messages
//! and watch requests. The runtime recognises them from the first frame's tag, before the
//! core would decode (and skip) them.

use bytes::Bytes;

use super::{
    Frame, MAGIC, MAX_DATAGRAM, MAX_STREAM, RawEnvelope, Transport, VERSION, body, check_name,
    decode_body, encode_envelope, envelope_overhead, malformed, tag, varint_len,
};
use crate::wire::MAX_LABEL_LEN;
use crate::wire::error::DecodeError;
use crate::wire::forward::{ForwardFrame, ForwardReply, ForwardRequest, MAX_FORWARD_KEY, Outcome};
use crate::wire::user::{MessageDatagram, ReliableMessage};

/// Encodes a forwarded request, its reply or a reliable message as a one-frame envelope
/// (tags 11, 12 and 14).
pub fn encode_forward(label: &str, frame: &ForwardFrame) -> Bytes {
    let frame = match frame {
        ForwardFrame::Request(r) => body(tag::FORWARD_REQUEST, r),
        ForwardFrame::Reply(r) => body(tag::FORWARD_REPLY, r),
        ForwardFrame::Message(m) => body(tag::RELIABLE_MESSAGE, m),
    };
    encode_envelope(label, vec![frame])
}

/// Whether a plain stream payload opens a forward connection: its first frame is a forwarded
/// request (tag 11) or a reliable message (tag 14), the two things a caller sends on one.
/// Reads only the header, so a large push-pull is not decoded twice to tell.
pub fn starts_forward_connection(bytes: &[u8]) -> bool {
    matches!(
        first_tag(bytes),
        Some(tag::FORWARD_REQUEST | tag::RELIABLE_MESSAGE)
    )
}

/// The stream payload that opens a watch connection (one frame, tag 17, empty body): the
/// watcher holds the connection open and reads nothing from it, so its end tells that the
/// watched process is gone.
pub fn encode_watch(label: &str) -> Bytes {
    encode_envelope(label, vec![body(tag::WATCH, &())])
}

/// Whether a plain stream payload is a watch request for this mesh (`label`), exactly as
/// [`encode_watch`] builds it.
pub fn is_watch(bytes: &[u8], label: &str) -> bool {
    single_frame(bytes, label, WATCH_MAX, Transport::Stream)
        .is_ok_and(|f| f.tag == tag::WATCH && f.body.is_empty())
}

/// Largest watch request: the envelope's header with the longest label and one empty frame.
const WATCH_MAX: usize = 64 + MAX_LABEL_LEN;

/// Whether a plain datagram is a best-effort message (its first frame has tag 13), which the
/// runtime hands to [`decode_message`] instead of the protocol core. Reads only the header.
pub fn is_message(bytes: &[u8]) -> bool {
    first_tag(bytes) == Some(tag::MESSAGE)
}

/// Encodes a best-effort message as a datagram of its own (tag 13).
pub fn encode_message(label: &str, msg: &MessageDatagram) -> Bytes {
    encode_envelope(label, vec![body(tag::MESSAGE, msg)])
}

/// Decodes a datagram holding exactly one best-effort message and checks the sender's name.
/// Anything else is an error, and the caller drops the datagram.
pub fn decode_message(bytes: &[u8], label: &str) -> Result<MessageDatagram, DecodeError> {
    let frame = single_frame(bytes, label, MAX_DATAGRAM, Transport::Datagram)?;
    if frame.tag != tag::MESSAGE {
        return Err(malformed(format!(
            "frame tag {} is not a message",
            frame.tag
        )));
    }
    let msg: MessageDatagram = decode_body(&frame.body, Transport::Datagram)?;
    check_name("message.from", &msg.from)?;
    Ok(msg)
}

/// Bytes the datagram [`encode_message`] builds for this label, sender and body length.
fn message_len(label: &str, from: &str, body_len: usize) -> usize {
    let fields = varint_len(from.len()) + from.len() + varint_len(body_len) + body_len;
    envelope_overhead(label, 1) + 1 + varint_len(fields) + fields
}

/// The longest body a best-effort message from `from` may carry so that its datagram takes
/// at most `room` bytes (0 if not even an empty one fits).
pub fn max_message_body(label: &str, from: &str, room: usize) -> usize {
    // Each length prefix is at most 9 bytes, so this starts at most a few bytes too high.
    let mut body = room.saturating_sub(message_len(label, from, 0));
    while body > 0 && message_len(label, from, body) > room {
        body -= 1;
    }
    body
}

/// The tag of an envelope's first frame, read from the header alone.
fn first_tag(bytes: &[u8]) -> Option<u8> {
    fn varint(b: &[u8]) -> Option<(u64, &[u8])> {
        let (&first, rest) = b.split_first()?;
        let width = match first {
            0..=250 => return Some((u64::from(first), rest)),
            251 => 2,
            252 => 4,
            253 => 8,
            _ => return None,
        };
        let (n, rest) = (rest.get(..width)?, &rest[width..]);
        let mut le = [0u8; 8];
        le[..width].copy_from_slice(n);
        Some((u64::from_le_bytes(le), rest))
    }
    let rest = bytes.strip_prefix(&MAGIC)?.strip_prefix(&[VERSION])?;
    let (label, rest) = varint(rest)?;
    let rest = rest.get(usize::try_from(label).ok()?..)?;
    let (count, rest) = varint(rest)?;
    (count > 0).then(|| rest.first().copied()).flatten()
}

/// Decodes a forward envelope of at most `max` bytes holding exactly one forward frame, and
/// checks its bounds (key length, a refusal's owner name). Anything else is an error, and
/// the caller drops the connection it came on.
pub fn decode_forward(bytes: &[u8], label: &str, max: usize) -> Result<ForwardFrame, DecodeError> {
    let frame = single_frame(bytes, label, max.min(MAX_STREAM), Transport::Stream)?;
    let b = &frame.body[..];
    let decoded = match frame.tag {
        tag::FORWARD_REQUEST => {
            ForwardFrame::Request(decode_body::<ForwardRequest>(b, Transport::Stream)?)
        }
        tag::FORWARD_REPLY => {
            ForwardFrame::Reply(decode_body::<ForwardReply>(b, Transport::Stream)?)
        }
        tag::RELIABLE_MESSAGE => {
            ForwardFrame::Message(decode_body::<ReliableMessage>(b, Transport::Stream)?)
        }
        t => return Err(malformed(format!("frame tag {t} is not a forward frame"))),
    };
    validate_forward(&decoded)?;
    Ok(decoded)
}

/// The one frame of an envelope of at most `limit` bytes carrying `label`: what forward
/// frames and messages travel in. Any other shape is an error.
fn single_frame(
    bytes: &[u8],
    label: &str,
    limit: usize,
    transport: Transport,
) -> Result<Frame, DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
    if !bytes.starts_with(&MAGIC) || bytes.get(MAGIC.len()) != Some(&VERSION) {
        return Err(DecodeError::BadMagic);
    }
    let mut raw: RawEnvelope = decode_body(bytes, transport)?;
    if raw.label != label {
        let mut got = raw.label;
        got.truncate(got.floor_char_boundary(MAX_LABEL_LEN));
        return Err(DecodeError::LabelMismatch {
            expected: label.to_owned(),
            got,
        });
    }
    if raw.frames.len() != 1 {
        let n = raw.frames.len();
        return Err(malformed(format!(
            "{n} frames in an envelope that carries one"
        )));
    }
    Ok(raw.frames.swap_remove(0))
}

fn validate_forward(frame: &ForwardFrame) -> Result<(), DecodeError> {
    match frame {
        ForwardFrame::Request(r) if r.key.len() > MAX_FORWARD_KEY => Err(DecodeError::Invalid {
            field: "forward.key",
            reason: format!("{} bytes exceeds {MAX_FORWARD_KEY}", r.key.len()),
        }),
        ForwardFrame::Reply(ForwardReply {
            outcome: Outcome::NotOwner { owner: Some(name) },
            ..
        }) => check_name("forward.owner", name),
        ForwardFrame::Message(m) => check_name("message.from", &m.from),
        _ => Ok(()),
    }
}
