//! The SWIM + Lifeguard membership protocol as a sans-IO state machine.
//!
//! [`Swim`] does no I/O, reads no clock and draws no OS randomness: time arrives as an
//! argument, packets leave through [`Swim::poll_transmit`], membership changes through
//! [`Swim::poll_event`], user events through [`Swim::poll_user_event`], and randomness
//! comes from a seed the driver chooses. The tokio
//! runtime and the simulator drive this same code with the same loop: feed an input, then
//! drain the `poll_*` methods.

mod awareness;
mod bounds;
mod broadcast;
mod config;
mod error;
mod event;
mod interner;
mod order;
mod pool;
mod seeds;
mod stats;
mod suspicion;
mod swim;
mod table;
mod timings;
mod user_events;

/// A user event as the core delivers it: the same record frame 16 carries.
pub use crate::wire::user::UserEvent;
pub use bounds::{Bounds, bounds};
pub use config::{Config, ConfigError, Preset};
pub use error::{ForceLeaveError, ProtoError};
pub use event::{Channel, Event, Member, Transmit};
pub use interner::Interner;
pub use seeds::{SeedRetry, seeds_needed};
pub(crate) use stats::counters;
pub use stats::{Counter, RTT_BUCKETS_US, RttHistogram, Stats};
pub use suspicion::min_timeout as suspicion_min_timeout;
pub use swim::{Identity, Swim};
pub use timings::Timings;
pub use user_events::{USER_EVENT_QUEUE, USER_EVENT_SHARE_PERCENT, UserEventError};
