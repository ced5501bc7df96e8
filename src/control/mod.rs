//! The local control endpoint a running agent serves and the CLI talks to.
//!
//! One request per connection: the client writes one JSON object on one line, the agent
//! answers with one JSON line and closes. JSON keeps it scriptable (`nc` works) and apart from
//! the gossip port, which speaks only the binary wire format. By default it listens on
//! loopback only.

mod client;
mod mesh;
mod protocol;
mod server;

pub use client::call;
pub use mesh::{MeshHandler, member_info};
pub use protocol::{MemberInfo, Request, Response, SecretString, StatusInfo};
pub use server::{Handler, serve};

use thiserror::Error;

/// Longest request or response line accepted, in bytes.
pub const MAX_LINE: usize = 1 << 20;

/// Why a control request failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ControlError {
    /// No agent answers at the address (not running, or another port).
    #[error("cannot reach the agent's control endpoint at {addr}: {source}")]
    Unreachable {
        /// The address tried.
        addr: String,
        /// The connection error.
        source: std::io::Error,
    },
    /// The agent took too long to answer.
    #[error("the agent at {0} did not answer in time")]
    Timeout(String),
    /// The answer was not a valid response (another program on that port?).
    #[error("invalid answer from {addr}: {reason}")]
    BadResponse {
        /// The address asked.
        addr: String,
        /// What was wrong.
        reason: String,
    },
}
