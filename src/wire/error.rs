use thiserror::Error;

/// Why bytes from the network were refused. A refused packet changes no state.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The packet does not start with swimring's magic bytes: not ours, or garbage.
    #[error("not a swimring packet (bad magic)")]
    BadMagic,
    /// The packet is from a protocol version this build cannot read.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// The packet belongs to another cluster; meshes with different labels never merge.
    #[error("cluster label mismatch: expected {expected:?}, got {got:?}")]
    LabelMismatch {
        /// This node's cluster label.
        expected: String,
        /// The label the packet carried.
        got: String,
    },
    /// The packet is larger than the limit for its transport.
    #[error("packet of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Size of the packet.
        len: usize,
        /// The limit it broke.
        limit: usize,
    },
    /// The bytes do not decode into well-formed messages.
    #[error("malformed packet: {0}")]
    Malformed(String),
    /// A field decoded but breaks a bound (name length, metadata size, member count, …).
    #[error("invalid field {field}: {reason}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}
