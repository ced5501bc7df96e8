//! Errors the tokio runtime ([`crate::runtime::Mesh`]) returns to the application.

use std::io;
use std::net::SocketAddr;

use thiserror::Error;

use crate::proto::{ConfigError, ForceLeaveError, ProtoError};
use crate::wire::{DecodeError, KeyError};

/// What went wrong when starting or operating a [`Mesh`](crate::runtime::Mesh).
///
/// Each variant says what happened to the caller's request; none of them means the process
/// is in a bad state. Errors from the network (a malformed packet, a peer that hangs up) are
/// never returned here: they are counted in [`MeshStats`](crate::runtime::MeshStats) and logged.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The UDP socket or the TCP listener could not be bound. Nothing was started.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A configuration value is out of range. Nothing was started.
    #[error("invalid config field `{field}`: {reason}")]
    Config {
        /// The field's name, as spelled in [`Config`](crate::Config) or on the builder.
        field: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// No advertise address could be chosen: the node is bound to an unspecified address
    /// (`0.0.0.0` or `::`) and the kernel has no route to pick a source address from. Set
    /// [`MeshBuilder::advertise`](crate::runtime::MeshBuilder::advertise).
    #[error("cannot choose an address to advertise: {reason}; set `advertise` explicitly")]
    Advertise {
        /// Why the automatic choice failed.
        reason: String,
    },
    /// A seed could not be resolved to any address (bad syntax, unknown host name, or a DNS
    /// failure). The node itself keeps running.
    #[error("cannot resolve seed {seed:?}: {reason}")]
    UnresolvableSeed {
        /// The seed as given, `host:port`.
        seed: String,
        /// What the resolver said.
        reason: String,
    },
    /// Metadata larger than [`Config::max_meta`](crate::Config::max_meta). The previous
    /// metadata is still in force.
    #[error("metadata of {len} bytes exceeds max_meta ({limit} bytes)")]
    MetaTooLarge {
        /// Size of the refused metadata.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The node's current metadata is not key=value tags, so tags cannot be updated. The
    /// metadata is unchanged.
    #[error("current metadata is not key=value tags: {0}")]
    NotTags(#[source] DecodeError),
    /// The node has left (or is leaving) the mesh: it can no longer change its metadata or
    /// join again. Start a new [`Mesh`](crate::runtime::Mesh) instead.
    #[error("the node has left the mesh")]
    Left,
    /// A node without keys was asked to bind or advertise an address beyond loopback, where
    /// anyone on the network could read and forge its membership. Nothing was started. Give
    /// it a key ([`MeshBuilder::keys`](crate::runtime::MeshBuilder::keys)), or allow plaintext
    /// explicitly ([`MeshBuilder::allow_plaintext`](crate::runtime::MeshBuilder::allow_plaintext)).
    #[error(
        "refusing to run without encryption on {addr}, which is not a loopback address: give a key, or allow plaintext explicitly (--insecure-plaintext, MeshBuilder::allow_plaintext)"
    )]
    Plaintext {
        /// The bound or advertised address that is not loopback.
        addr: SocketAddr,
    },
    /// A key or a keyring change was refused; the keyring is unchanged.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A forced leave was refused; no record changed.
    #[error(transparent)]
    ForceLeave(#[from] ForceLeaveError),
    /// The mesh has shut down (by [`Mesh::shutdown`](crate::runtime::Mesh::shutdown),
    /// [`Mesh::leave`](crate::runtime::Mesh::leave), or because its runtime stopped).
    #[error("the mesh has shut down")]
    Shutdown,
}

impl From<ProtoError> for Error {
    fn from(e: ProtoError) -> Error {
        match e {
            ProtoError::Config(c) => c.into(),
            ProtoError::MetaTooLarge { len, limit } => Error::MetaTooLarge { len, limit },
            ProtoError::Left => Error::Left,
        }
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Error {
        Error::Config {
            field: e.field,
            reason: e.reason,
        }
    }
}
