//! User events (serf's): what the core keeps to disseminate them and to deliver each once.
//!
//! An event is identified by its origin's name, the origin's run and a sequence number the
//! origin counts from 1 in each run. Dissemination is the membership rumours' own: events
//! wait in a [`Broadcasts`] queue of their own and ride in the piggyback room of every
//! datagram, each sent the rumours' retransmit count, with a fair share of that room
//! ([`USER_EVENT_SHARE_PERCENT`]). This module holds the bounds, the queue and the memory of
//! what was delivered; `swim/user.rs` applies them.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use super::broadcast::Broadcasts;
use super::interner::Name;
use crate::wire::codec::Frame;
use crate::wire::user::MAX_USER_EVENT_NAME;

/// Percent of a datagram's piggyback room that user events may take first when membership
/// rumours are waiting too; whatever either kind leaves unused goes to the other.
///
/// Without a share, a large mesh's membership churn fills every datagram and application
/// events wait behind it indefinitely (memberlist#299, at about 1,000 nodes). Half is an
/// equal split of the two kinds, and it bounds an event's size: every event fits in the
/// share of any datagram ([`max_user_event_frame`]), so a waiting event goes out in the next
/// datagram sent, however long the membership queue.
pub const USER_EVENT_SHARE_PERCENT: usize = 50;

/// Most user events a node holds for dissemination, its own and those it relays: its own
/// are refused past it ([`UserEventError::QueueFull`]), and a relayed one evicts the most
/// sent. The same as the dedupe window, so one origin can have a full queue's worth of events
/// in flight and none is mistaken for a duplicate for being too far behind.
pub const USER_EVENT_QUEUE: usize = Window::SPAN as usize;

/// Origins not in the member table remembered at once (an event can arrive before its
/// origin's alive rumour); events from further unknown origins are refused and counted.
const MAX_STRANGERS: usize = 1024;

/// Why [`Swim::broadcast`](super::Swim::broadcast) (or `Mesh::broadcast`) refused an event.
/// Nothing was queued or delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UserEventError {
    /// The event's name is empty.
    #[error("a user event needs a name")]
    EmptyName,
    /// The event's name is longer than [`MAX_USER_EVENT_NAME`] bytes.
    #[error("user event name of {len} bytes exceeds {limit}")]
    NameTooLong {
        /// The name's length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// Name and payload together are larger than fits the piggyback room of a datagram
    /// (`Swim::max_user_event_len`, `Mesh::max_user_event_len`).
    #[error("user event of {len} bytes (name and payload) exceeds {limit}")]
    TooLarge {
        /// The name's and payload's length together.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// [`USER_EVENT_QUEUE`] events are waiting to be disseminated: the mesh carries events
    /// as fast as its gossip can. Try again later.
    #[error("{limit} user events are already waiting to be disseminated: try again later")]
    QueueFull {
        /// The queue's bound.
        limit: usize,
    },
    /// This node has left the mesh.
    #[error("the node has left the mesh")]
    Left,
    /// The mesh has shut down (from `Mesh::broadcast` only).
    #[error("the mesh has shut down")]
    Shutdown,
}

/// The checks of an event this node broadcasts, in the order a caller fixes them.
pub(crate) fn check(name: &str, payload_len: usize, limit: usize) -> Result<(), UserEventError> {
    if name.is_empty() {
        return Err(UserEventError::EmptyName);
    }
    if name.len() > MAX_USER_EVENT_NAME {
        return Err(UserEventError::NameTooLong {
            len: name.len(),
            limit: MAX_USER_EVENT_NAME,
        });
    }
    let len = name.len() + payload_len;
    if len > limit {
        return Err(UserEventError::TooLarge { len, limit });
    }
    Ok(())
}

/// The largest user event frame a datagram of `max_datagram` bytes carries, given the room
/// its envelope (`overhead`) and the largest message it piggybacks on (`carrier`) take:
/// [`USER_EVENT_SHARE_PERCENT`] of what is left for rumours. Derived from the datagram
/// limit alone, so it needs no setting of its own.
pub(crate) fn max_user_event_frame(max_datagram: usize, overhead: usize, carrier: usize) -> usize {
    max_datagram.saturating_sub(overhead + carrier) * USER_EVENT_SHARE_PERCENT / 100
}

/// Which sequence numbers of one origin's run were delivered: every one up to `base`, and
/// those of the next [`Window::SPAN`] whose bit is set.
///
/// Why this shape: an event is delivered once wherever its copies come from, so a node must
/// remember what it delivered; keeping every (origin, seq) would grow without end. Events of
/// one run are numbered 1, 2, 3, … and arrive roughly in order, so the contiguous prefix is
/// one number and the out-of-order tail a bitmap: 24 bytes per origin whatever it sent,
/// about 0.5 MB for 10,000 broadcasting members (with the map's own overhead), and O(1) per
/// event. A number more than the span ahead slides the window, and anything it slides past
/// counts as delivered: with at most [`USER_EVENT_QUEUE`] events of an origin in flight, only
/// an event that has outlived its own retransmissions could be lost that way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Window {
    base: u64,
    bits: u128,
}

impl Window {
    const SPAN: u64 = 128;

    /// Marks `seq` delivered; whether it was new.
    fn insert(&mut self, seq: u64) -> bool {
        if seq <= self.base {
            return false;
        }
        let ahead = seq - self.base;
        if ahead > Self::SPAN {
            let shift = ahead - Self::SPAN;
            self.bits = if shift >= Self::SPAN {
                0
            } else {
                self.bits >> shift
            };
            self.base += shift;
        }
        let bit = 1u128 << (seq - self.base - 1);
        if self.bits & bit != 0 {
            return false;
        }
        self.bits |= bit;
        // Fold the contiguous prefix into the base.
        let run = u64::from(self.bits.trailing_ones());
        self.bits = if run >= Self::SPAN {
            0
        } else {
            self.bits >> run
        };
        self.base += run;
        true
    }
}

/// One origin's delivered events: the newest run heard, and its window. An event of an
/// earlier run is refused as a duplicate: its run's window was given up when the newer run
/// was heard, and delivering it could deliver it twice.
#[derive(Debug, Clone, Copy)]
struct Origin {
    run: u64,
    window: Window,
}

/// What [`UserEventState::observe`] decided about an arriving event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Not delivered before: deliver and relay it.
    New,
    /// Delivered before, or from a run older than one heard: drop it.
    Duplicate,
    /// From an unknown origin while [`MAX_STRANGERS`] are remembered: drop it.
    Refused,
}

/// The core's user event state: the events waiting to be disseminated, the memory of what
/// was delivered, and what waits for the driver's [`poll_user_event`](super::Swim::poll_user_event).
#[derive(Debug)]
pub(crate) struct UserEventState {
    /// Encoded events waiting for piggyback room, keyed by arrival (none replaces another).
    pub queue: Broadcasts<u64>,
    arrivals: u64,
    /// This run's next sequence number.
    next_seq: u64,
    origins: HashMap<Name, Origin>,
    /// Origins that were not members when first heard, by that time: forgotten after the
    /// dead retention unless they have become members (whose records say when to forget).
    strangers: BTreeSet<(Instant, Name)>,
    /// The largest frame this node sends or relays ([`max_user_event_frame`]).
    pub max_frame: usize,
}

impl UserEventState {
    pub(crate) fn new(max_frame: usize) -> UserEventState {
        UserEventState {
            queue: Broadcasts::default(),
            arrivals: 0,
            next_seq: 1,
            origins: HashMap::new(),
            strangers: BTreeSet::new(),
            max_frame,
        }
    }

    /// The sequence number this node's next event gets; counts it.
    pub(crate) fn next_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Queues an encoded event for dissemination. A full queue evicts its most sent event
    /// first; whether one was evicted.
    pub(crate) fn enqueue(&mut self, frame: Frame) -> bool {
        let evicted = self.queue.len() >= USER_EVENT_QUEUE && self.queue.evict_most_sent();
        self.queue.push(self.arrivals, frame);
        self.arrivals += 1;
        evicted
    }

    /// Records an event from `origin`'s `run` numbered `seq`. `member` says whether the
    /// origin is in the member table (otherwise it is remembered as a stranger, from `now`);
    /// `intern` gives the shared copy of its name, asked for only for a new origin.
    pub(crate) fn observe(
        &mut self,
        now: Instant,
        (origin, intern): (&str, impl FnOnce() -> Name),
        (run, seq): (u64, u64),
        member: bool,
    ) -> Seen {
        if let Some(o) = self.origins.get_mut(origin) {
            if run < o.run {
                return Seen::Duplicate;
            }
            if run > o.run {
                *o = Origin {
                    run,
                    window: Window::default(),
                };
            }
            return if o.window.insert(seq) {
                Seen::New
            } else {
                Seen::Duplicate
            };
        }
        if !member && self.strangers.len() >= MAX_STRANGERS {
            return Seen::Refused;
        }
        let origin = intern();
        if !member {
            self.strangers.insert((now, origin.clone()));
        }
        let mut window = Window::default();
        window.insert(seq);
        self.origins.insert(origin, Origin { run, window });
        Seen::New
    }

    /// Forgets what `origin` sent: its member record is being forgotten, so its events
    /// stopped circulating long ago.
    pub(crate) fn forget(&mut self, origin: &str) {
        self.origins.remove(origin);
    }

    /// Forgets strangers first heard `retention` or more before `now` that `is_member` does
    /// not know by now.
    pub(crate) fn reap_strangers(
        &mut self,
        now: Instant,
        retention: std::time::Duration,
        is_member: impl Fn(&str) -> bool,
    ) {
        while let Some((at, name)) = self.strangers.first().cloned() {
            if at + retention > now {
                break;
            }
            self.strangers.pop_first();
            if !is_member(&name) {
                self.origins.remove(&*name);
            }
        }
    }

    /// Origins remembered (for tests of the bound).
    #[cfg(test)]
    pub(crate) fn origins(&self) -> usize {
        self.origins.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::interner::Interner;

    #[test]
    fn a_window_delivers_each_number_once_in_any_order() {
        let mut w = Window::default();
        for seq in [3, 1, 2, 2, 5, 1, 4, 3] {
            let _ = w.insert(seq);
        }
        assert_eq!((w.base, w.bits), (5, 0), "1..=5 folded into the base");
        let mut w = Window::default();
        let new: Vec<bool> = [2, 2, 1, 1, 4].map(|s| w.insert(s)).to_vec();
        assert_eq!(new, [true, false, true, false, true]);
        assert_eq!((w.base, w.bits), (2, 0b10));
    }

    #[test]
    fn a_window_slides_and_what_it_slides_past_counts_as_delivered() {
        let mut w = Window::default();
        assert!(w.insert(1));
        assert!(w.insert(1000), "far ahead: slides");
        assert_eq!(w.base, 1000 - Window::SPAN);
        assert!(!w.insert(500), "slid past: never delivered twice");
        assert!(w.insert(1000 - Window::SPAN + 1), "still inside the window");
        assert!(!w.insert(1000));
        assert!(w.insert(u64::MAX), "no overflow at the end of the numbers");
        assert!(!w.insert(u64::MAX));
    }

    #[test]
    fn a_newer_run_starts_again_and_an_older_one_is_refused() {
        let names = Interner::default();
        let now = crate::test_epoch();
        let mut s = UserEventState::new(500);
        let a = || ("a", || names.name("a"));
        assert_eq!(s.observe(now, a(), (1, 1), true), Seen::New);
        assert_eq!(s.observe(now, a(), (1, 1), true), Seen::Duplicate);
        assert_eq!(s.observe(now, a(), (2, 1), true), Seen::New, "restarted");
        assert_eq!(
            s.observe(now, a(), (1, 2), true),
            Seen::Duplicate,
            "old run"
        );
        assert_eq!(s.origins(), 1, "one entry per origin, whatever its runs");
    }

    #[test]
    fn strangers_are_bounded_and_forgotten_unless_they_became_members() {
        let names = Interner::default();
        let now = crate::test_epoch();
        let mut s = UserEventState::new(500);
        for i in 0..MAX_STRANGERS {
            let n = format!("s{i}");
            let origin = (n.as_str(), || names.name(&n));
            assert_eq!(s.observe(now, origin, (1, 1), false), Seen::New);
        }
        let late = || ("late", || names.name("late"));
        assert_eq!(s.observe(now, late(), (1, 1), false), Seen::Refused);
        assert_eq!(
            s.observe(now, late(), (1, 1), true),
            Seen::New,
            "members always"
        );
        let hour = std::time::Duration::from_secs(3600);
        s.reap_strangers(now + hour / 2, hour, |_| false);
        assert_eq!(s.origins(), MAX_STRANGERS + 1, "not yet");
        s.reap_strangers(now + hour, hour, |n| n == "s7");
        assert_eq!(s.origins(), 2, "s7 became a member, and late always was");
    }

    #[test]
    fn a_full_queue_evicts_the_most_sent() {
        let mut s = UserEventState::new(500);
        let frame = || {
            crate::wire::codec::encode_frame(&crate::wire::Message::Ack(crate::wire::Ack {
                seq: 1,
            }))
        };
        for _ in 0..USER_EVENT_QUEUE {
            assert!(!s.enqueue(frame()));
        }
        assert!(s.enqueue(frame()));
        assert_eq!(s.queue.len(), USER_EVENT_QUEUE);
    }

    #[test]
    fn checks_name_then_size() {
        assert_eq!(check("", 0, 10), Err(UserEventError::EmptyName));
        let long = "n".repeat(MAX_USER_EVENT_NAME + 1);
        assert!(matches!(
            check(&long, 0, 1000),
            Err(UserEventError::NameTooLong { .. })
        ));
        assert_eq!(
            check("deploy", 5, 10),
            Err(UserEventError::TooLarge { len: 11, limit: 10 })
        );
        assert_eq!(check("deploy", 4, 10), Ok(()));
    }
}
