//! What travels between peers: message types, the codec, framing and size limits.
//!
//! Every byte that leaves or enters a node goes through [`codec`]; nothing else in the crate
//! touches bincode. [`seal`] wraps a packet in authenticated encryption when the
//! cluster has keys. A datagram or stream payload is an *envelope*: a header (magic, protocol
//! version, cluster label) followed by *frames*, each a tag and a length-prefixed body. A
//! receiver skips frames whose tag it does not know and ignores bytes after the fields it
//! knows at the end of a body, so later versions can add message kinds and fields without
//! breaking older peers.

pub mod codec;
mod error;
pub mod forward;
mod message;
pub mod seal;
pub mod user;

pub use codec::{Envelope, Limits};
pub use error::DecodeError;
pub use message::{
    Ack, Alive, Dead, Epoch, Left, Member, Message, Nack, Ping, PingReq, PushPull, Reach, Reached,
    State, Suspect, Update,
};
pub use seal::{Key, KeyError, KeyId, Keyring};

/// The former name of [`Member`], kept so code written against 0.1 still builds.
#[deprecated(since = "0.2.0", note = "renamed `Member`: one record, one name")]
pub type MemberState = Member;

/// Longest member name, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Longest cluster label, in bytes.
pub const MAX_LABEL_LEN: usize = 64;
/// Default bound on member metadata, in bytes (memberlist's limit).
pub const MAX_META_LEN: usize = 512;
