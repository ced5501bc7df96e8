//! Log lines for `swimring monitor`: the agent's logging hands them here, and each monitor
//! connection takes the ones at its level.

use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::broadcast;
use tracing::Level;

use super::LogLine;

/// Log lines held for a slow monitor before it misses some.
const CAPACITY: usize = 1024;

/// Where the agent's logging publishes lines while some monitor wants them. It costs one
/// atomic load per log event while nobody watches.
#[derive(Debug)]
pub struct LogTap {
    tx: broadcast::Sender<LogLine>,
    /// The most verbose level any monitor asked for, as [`rank`] numbers it.
    most_verbose: AtomicU8,
}

impl Default for LogTap {
    fn default() -> LogTap {
        LogTap {
            tx: broadcast::channel(CAPACITY).0,
            most_verbose: AtomicU8::new(0),
        }
    }
}

/// 1 for error up to 5 for trace.
fn rank(level: Level) -> u8 {
    match level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// A level as `--logs` spells it.
pub(crate) fn parse_level(s: &str) -> Result<Level, String> {
    s.parse::<Level>()
        .map_err(|_| format!("unknown log level {s:?}: expected error, warn, info, debug or trace"))
}

impl LogTap {
    /// Whether a line at `level` would reach some monitor: the logging layer asks before it
    /// formats anything.
    pub fn wants(&self, level: Level) -> bool {
        self.tx.receiver_count() > 0 && rank(level) <= self.most_verbose.load(Ordering::Relaxed)
    }

    /// Hands a formatted line to the monitors.
    pub fn publish(&self, line: LogLine) {
        let _ = self.tx.send(line);
    }

    /// Lines at `level` and above from now on (lines below it are filtered by the reader).
    pub(crate) fn subscribe(&self, level: Level) -> (broadcast::Receiver<LogLine>, u8) {
        let rx = self.tx.subscribe();
        if self.tx.receiver_count() == 1 {
            self.most_verbose.store(0, Ordering::Relaxed); // nobody else watches
        }
        self.most_verbose.fetch_max(rank(level), Ordering::Relaxed);
        (rx, rank(level))
    }

    /// Whether a line's level passes a subscriber's threshold from [`LogTap::subscribe`].
    pub(crate) fn passes(line: &LogLine, threshold: u8) -> bool {
        parse_level(&line.level).is_ok_and(|l| rank(l) <= threshold)
    }
}
