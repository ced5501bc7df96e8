//! swimring: decentralised membership and work placement.

pub mod control;
pub mod error;
pub mod proto;
pub mod ring;
pub mod runtime;
pub mod wire;

pub use error::Error;
pub use proto::{Config, Event, Member, Preset};
pub use runtime::{Events, Mesh, MeshBuilder, MeshStats, RecvError};
pub use wire::State;
