//! The agent's logging: human lines on stderr at a level a reload can change, and a tap that
//! hands lines to `swimring monitor` while one listens.

use std::fmt::Write as _;
use std::sync::Arc;

use swimring::control::{LogLine, LogTap};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry, reload};

use crate::settings::LogLevel;

/// Changes the stderr log level of a running agent.
pub struct Logging {
    handle: Option<reload::Handle<EnvFilter, Registry>>,
    /// Lines for monitors.
    pub tap: Arc<LogTap>,
}

/// The filter for a level, unless SWIMRING_LOG gives a whole filter (which then wins).
fn filter(level: LogLevel) -> EnvFilter {
    EnvFilter::try_from_env("SWIMRING_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("swimring={}", level.as_str())))
}

/// Logs for people go to stderr, so stdout carries only JSON events when asked for.
pub fn init(level: LogLevel) -> Logging {
    let tap = Arc::new(LogTap::default());
    let (env, handle) = reload::Layer::new(filter(level));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_filter(env);
    let wanted = Arc::clone(&tap);
    let monitors = TapLayer(Arc::clone(&tap)).with_filter(filter_fn(move |meta| {
        meta.target().starts_with("swimring") && wanted.wants(*meta.level())
    }));
    let installed = tracing_subscriber::registry()
        .with(fmt)
        .with(monitors)
        .try_init()
        .is_ok();
    Logging {
        handle: installed.then_some(handle),
        tap,
    }
}

impl Logging {
    /// Sets the stderr level (a no-op under SWIMRING_LOG, which was given as a whole filter).
    pub fn set_level(&self, level: LogLevel) -> Result<(), String> {
        match &self.handle {
            Some(h) => h.reload(filter(level)).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }
}

/// Formats events as `message key=value …` for the tap.
struct TapLayer(Arc<LogTap>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let sep = if self.0.is_empty() { "" } else { " " };
        if field.name() == "message" {
            self.0 = format!("{value:?}{sep}{}", self.0);
        } else {
            let _ = write!(self.0, "{sep}{}={value:?}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for TapLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.0.publish(LogLine {
            ts_ms: (swimring_now_secs() * 1000.0) as u64,
            level: event.metadata().level().as_str().to_lowercase(),
            message: fields.0,
        });
    }
}

#[allow(clippy::disallowed_methods)] // log lines are stamped with wall-clock time
fn swimring_now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
