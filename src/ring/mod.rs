//! Consistent-hash placement of work onto members.
//!
//! The membership layer decides *who* is eligible (e.g. alive and suspect members, optionally
//! filtered by metadata); this module decides *which* member owns each piece of work, purely
//! and deterministically, so every node holding the same view agrees without talking:
//!
//! - [`key_hash`]: the fixed xxh3 hash of a task key;
//! - [`Ring`]: weighted virtual nodes and owner / replica / failover lookups;
//! - [`assign_bounded`] and [`BoundedLoad`]: consistent hashing with bounded loads;
//! - [`TaskTable`]: the registered tasks, their owners, and what the local node must start
//!   and stop after each change.

mod bounded;
mod consistent;
mod error;
mod hash;
mod points;
mod tasks;

pub use bounded::{BoundedLoad, DEFAULT_LOAD_FACTOR, MIN_LOAD_FACTOR, assign_bounded};
pub use consistent::{
    DEFAULT_VNODES_PER_MEMBER, MAX_MEMBERS, MAX_POINTS, MAX_VNODES_PER_MEMBER, MAX_WEIGHT,
    NORMAL_WEIGHT, Ring, RingConfig,
};
pub use error::RingError;
pub use hash::key_hash;
pub use tasks::{LoadPolicy, Reassignment, TaskTable};

/// The former name of [`LoadPolicy`], kept so code written against 0.1 still builds.
#[deprecated(since = "0.2.0", note = "renamed `LoadPolicy`")]
pub type Placement = LoadPolicy;
