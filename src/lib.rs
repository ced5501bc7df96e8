//! swimring: decentralised membership and work placement.

pub mod control;
pub mod proto;
pub mod ring;
pub mod wire;

pub use proto::{Config, Event, Member, Preset};
pub use wire::State;
