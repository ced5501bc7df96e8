//! Progress of a run on stderr, for whoever waits on a long one: on a terminal an `indicatif`
//! bar (virtual time, wall time, events/s, ETA) redrawn in place; otherwise (a log file, CI) a
//! plain line every few wall seconds, because a redrawn bar is only noise in a file.
//!
//! It reads the cluster between two chunks of virtual time and the wall clock, and hands
//! nothing back: the simulation never sees it, so a run's trace is the same with or without
//! it, on a terminal or not.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{HumanCount, HumanDuration, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the plain line is printed: often enough to show a run is alive, rarely enough
/// that a log of a ten-minute run stays readable.
const LINE_EVERY: Duration = Duration::from_secs(3);

/// The wall clock, read only for progress and the summary's wall times: nothing the trace
/// depends on.
#[allow(clippy::disallowed_methods)]
pub(crate) fn wall_now() -> Instant {
    Instant::now()
}

/// What a report shows, read off the cluster once virtual time has reached `virtual_s`.
pub(crate) struct Snapshot {
    /// Virtual seconds reached.
    pub virtual_s: f64,
    /// Inputs handed to nodes so far.
    pub events: u64,
    /// Nodes up (running or paused).
    pub live: usize,
    /// The last sample's fraction of running nodes agreeing with the truth.
    pub agree: f64,
}

enum View {
    /// `--quiet`.
    Off,
    /// stderr is a terminal.
    Bar(ProgressBar),
    /// stderr is a file or a pipe.
    Lines,
}

/// Rates over the last window of wall time rather than since the start: a cold start's join
/// phase costs far more per virtual second than what follows, so a whole-run average would
/// keep the ETA minutes off long after the phase ended.
struct Window {
    /// Where the window opened: wall instant, virtual seconds, events.
    from: (Instant, f64, u64),
    /// Events per wall second over the last closed window.
    events_per_s: f64,
    /// Virtual seconds per wall second over the last closed window.
    speed: f64,
}

impl Window {
    /// Closes the window and opens the next if `len` of wall time has passed since it opened;
    /// says whether it did.
    fn roll(&mut self, wall: Instant, now: &Snapshot, len: Duration) -> bool {
        let (t0, v0, e0) = self.from;
        let dt = wall.duration_since(t0);
        if dt < len {
            return false;
        }
        let dt = dt.as_secs_f64();
        self.events_per_s = now.events.saturating_sub(e0) as f64 / dt;
        self.speed = (now.virtual_s - v0) / dt;
        self.from = (wall, now.virtual_s, now.events);
        true
    }

    /// Wall time left at the last window's speed, or `?` before a window has closed.
    fn eta(&self, now: &Snapshot, end_s: f64) -> String {
        if self.speed <= 0.0 {
            return "?".into();
        }
        let left = (end_s - now.virtual_s).max(0.0) / self.speed;
        format!("{:#}", HumanDuration(Duration::from_secs_f64(left)))
    }
}

/// The progress of one run of `end_s` virtual seconds.
pub(crate) struct Progress {
    view: View,
    end_s: f64,
    wall0: Instant,
    /// Opens when virtual time first advances, so the setup (minutes, for a converged
    /// 10,000-node start) is not counted in the rates.
    window: Option<Window>,
}

impl Progress {
    /// Starts reporting (nothing if `enabled` is false); the bar shows the setup of `nodes`
    /// nodes until virtual time first advances.
    pub(crate) fn start(enabled: bool, nodes: usize, end_s: f64) -> Self {
        let view = if !enabled {
            View::Off
        } else if std::io::stderr().is_terminal() {
            View::Bar(bar(nodes, end_s))
        } else {
            View::Lines
        };
        Progress {
            view,
            end_s,
            wall0: wall_now(),
            window: None,
        }
    }

    /// Reports `now`. The bar redraws at most about 20 times a second whatever the call rate,
    /// its rate once a second; the plain line waits [`LINE_EVERY`]; so calling this after
    /// every chunk of virtual time is cheap.
    pub(crate) fn update(&mut self, now: &Snapshot) {
        if matches!(self.view, View::Off) {
            return;
        }
        let wall = wall_now();
        let Some(w) = &mut self.window else {
            self.window = Some(Window {
                from: (wall, now.virtual_s, now.events),
                events_per_s: 0.0,
                speed: 0.0,
            });
            return;
        };
        match &self.view {
            View::Off => {}
            View::Bar(b) => {
                w.roll(wall, now, Duration::from_secs(1));
                b.set_position((now.virtual_s * 1e3) as u64);
                b.set_prefix(format!(
                    "{:.1}/{:.0} s virtual | {} events/s | ETA {}",
                    now.virtual_s,
                    self.end_s,
                    HumanCount(w.events_per_s as u64),
                    w.eta(now, self.end_s),
                ));
                b.set_message(format!("{} live, agree {:.3}", now.live, now.agree));
            }
            View::Lines => {
                if w.roll(wall, now, LINE_EVERY) {
                    eprintln!(
                        "[sim] {:.1}/{:.0} s virtual, {:.1} s wall, {} events ({:.0}/s), {} live, agree {:.3}, eta {}",
                        now.virtual_s,
                        self.end_s,
                        wall.duration_since(self.wall0).as_secs_f64(),
                        now.events,
                        w.events_per_s,
                        now.live,
                        now.agree,
                        w.eta(now, self.end_s)
                    );
                }
            }
        }
    }

    /// Clears the bar, so the run's summary line follows on a clean terminal.
    pub(crate) fn finish(&self) {
        if let View::Bar(b) = &self.view {
            b.finish_and_clear();
        }
    }
}

/// The terminal's bar: its position is virtual milliseconds out of the run's. Its ETA is
/// ours, from the last window (indicatif's own smooths over so long that it stays minutes
/// off after a cold start's join phase, seen at 1,000 nodes). It ticks on its own,
/// so the spinner and wall time move during the setup and a long chunk. What matters most
/// comes first and the live count and agreement last, in the part cut to the terminal's
/// width, so the bar stays one line on an 80-column terminal.
fn bar(nodes: usize, end_s: f64) -> ProgressBar {
    let b = ProgressBar::with_draw_target(Some((end_s * 1e3) as u64), ProgressDrawTarget::stderr());
    let style =
        ProgressStyle::with_template("{spinner} [{bar:16}] {prefix} | wall {elapsed} | {wide_msg}")
            .expect("a valid template")
            .progress_chars("=> ");
    b.set_style(style);
    b.set_prefix(format!("setting up {nodes} nodes"));
    b.enable_steady_tick(Duration::from_millis(200));
    b
}
