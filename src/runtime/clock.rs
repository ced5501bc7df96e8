//! The only places the runtime reads a clock. The protocol core never does: this driver
//! passes the time in.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The monotonic time handed to the core.
#[allow(clippy::disallowed_methods)] // the driver is where time enters the sans-IO core
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// Wall-clock milliseconds since the Unix epoch: the run id, which grows across restarts.
#[allow(clippy::disallowed_methods)] // a run id must come from a clock that survives restarts
pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_millis() as u64)
        .max(1)
}
