//! The tests' one way to wait: poll a condition until it holds, or give up once a bound has
//! passed, naming what was awaited and why the condition last failed. Bounds come from the
//! protocol (`swimring::proto::bounds`) with room for a loaded machine; nothing here is a
//! speed claim.
#![allow(dead_code)] // each test crate uses the part it needs
#![allow(clippy::disallowed_methods)] // waits are bounded by wall-clock deadlines

use std::time::{Duration, Instant};

/// How often a blocking wait polls: conditions here often start a process.
const POLL: Duration = Duration::from_millis(100);
/// How often an async wait polls: conditions there read a snapshot.
const POLL_ASYNC: Duration = Duration::from_millis(10);

/// Polls `check` until it gives a value, or `None` once `bound` has passed.
pub fn poll<T>(bound: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if start.elapsed() > bound {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// Polls `check` until it returns `Ok`; returns its value and the time taken. Panics with
/// `what`, the bound and the last failure once `bound` has passed.
pub fn wait_until<T>(
    what: &str,
    bound: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> (T, Duration) {
    let start = Instant::now();
    let mut last = String::new();
    match poll(bound, || check().map_err(|e| last = e).ok()) {
        Some(v) => (v, start.elapsed()),
        None => timed_out(what, bound, &last),
    }
}

/// Polls `cond` until it holds.
pub fn wait_for(what: &str, bound: Duration, mut cond: impl FnMut() -> bool) {
    wait_until(what, bound, || {
        cond().then_some(()).ok_or_else(|| "not yet".into())
    });
}

/// [`wait_for`] inside a tokio test: sleeps without blocking the runtime.
pub async fn wait_for_async(what: &str, bound: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > bound {
            timed_out(what, bound, "not yet");
        }
        tokio::time::sleep(POLL_ASYNC).await;
    }
}

fn timed_out(what: &str, bound: Duration, last: &str) -> ! {
    panic!("timed out after {bound:.2?} waiting until {what}; last: {last}")
}
