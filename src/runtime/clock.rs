//! The only places the runtime reads a clock. The protocol core never does: this driver
//! passes the time in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The monotonic time handed to the core.
#[allow(clippy::disallowed_methods)] // the driver is where time enters the sans-IO core
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// A new run id: wall-clock milliseconds since the Unix epoch, so it grows across restarts,
/// and above every run handed out before in this process, so two meshes started in the same
/// millisecond still differ (fencing tokens tell owners apart by run).
#[allow(clippy::disallowed_methods)] // a run id must come from a clock that survives restarts
pub(crate) fn new_run() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_millis() as u64)
        .max(1);
    let prev = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(wall.max(last + 1))
        })
        .unwrap_or_else(|last| last);
    wall.max(prev + 1)
}
