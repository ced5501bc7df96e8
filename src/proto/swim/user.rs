//! User events: broadcasting one, taking one from the network, and sharing each datagram's
//! piggyback room between them and membership rumours (see `proto::user_events`).

use std::time::Instant;

use bytes::Bytes;

use super::Swim;
use crate::proto::broadcast::Taken;
use crate::proto::user_events::{self, Seen, USER_EVENT_QUEUE, USER_EVENT_SHARE_PERCENT};
use crate::proto::user_events::{UserEventError, UserEventState};
use crate::wire::codec::{self, Frame};
use crate::wire::user::UserEvent;
use crate::wire::{Message, Ping, Suspect, Update};

impl Swim {
    /// Broadcasts a user event to every member (serf's `UserEvent`), and delivers it to this
    /// node too ([`Swim::poll_user_event`], as serf does). It is piggybacked on the datagrams
    /// this node sends, each member passes it on in turn, and every member delivers it once.
    /// Returns its sequence number in this run.
    ///
    /// Refused, changing nothing, when the name is empty or longer than 64 bytes, name and
    /// payload together exceed [`Swim::max_user_event_len`], [`USER_EVENT_QUEUE`] events are
    /// already waiting, or this node has left.
    pub fn broadcast(
        &mut self,
        _now: Instant,
        name: &str,
        payload: Bytes,
    ) -> Result<u64, UserEventError> {
        if self.leaving {
            return Err(UserEventError::Left);
        }
        user_events::check(name, payload.len(), self.max_user_event_len())?;
        if self.user_events.queue.len() >= USER_EVENT_QUEUE {
            return Err(UserEventError::QueueFull {
                limit: USER_EVENT_QUEUE,
            });
        }
        let seq = self.user_events.next_seq();
        let event = UserEvent {
            from: self.me.name.clone(),
            run: self.me.run,
            seq,
            name: name.to_owned(),
            payload,
        };
        // Own events coming back are told apart by the name alone (see `take_user_event`).
        let _ = self
            .user_events
            .enqueue(codec::encode_frame(&Message::UserEvent(event.clone())));
        self.delivered.push_back(event);
        self.stats.user_events_sent += 1;
        Ok(seq)
    }

    /// The most bytes of name and payload together that [`Swim::broadcast`] takes: what fits
    /// in [`USER_EVENT_SHARE_PERCENT`] of the piggyback room of a `max_datagram` datagram
    /// (about 540 bytes on the defaults, 510 with keys).
    pub fn max_user_event_len(&self) -> usize {
        codec::max_user_event_len(&self.me.name, self.me.run, self.user_events.max_frame)
    }

    /// The next user event to deliver, if any: every event broadcast in the mesh, once, this
    /// node's own included. Call until `None` after every input, like
    /// [`Swim::poll_event`].
    #[must_use]
    pub fn poll_user_event(&mut self) -> Option<UserEvent> {
        super::pop_and_trim(&mut self.delivered)
    }

    /// An event arrived in a datagram: delivered and passed on if it is new, else dropped.
    pub(super) fn take_user_event(&mut self, now: Instant, e: UserEvent) {
        if e.from == self.me.name {
            // Delivered when broadcast; anything else under this name is an earlier run's
            // or a name conflict's, and not this node's to deliver.
            self.stats.user_events_duplicates += 1;
            return;
        }
        let member = self.members.get(e.from.as_str()).is_some();
        let names = &self.names;
        let origin = (e.from.as_str(), || names.name(&e.from));
        let seen = self
            .user_events
            .observe(now, origin, (e.run, e.seq), member);
        *match seen {
            Seen::New => &mut self.stats.user_events_received,
            Seen::Duplicate => &mut self.stats.user_events_duplicates,
            Seen::Refused => &mut self.stats.user_events_refused,
        } += 1;
        if seen != Seen::New {
            return;
        }
        let frame = codec::encode_frame(&Message::UserEvent(e.clone()));
        // A larger event than this node sends (from a peer with a larger datagram) is
        // delivered but not passed on: it might never fit this node's share of a datagram.
        if frame.encoded_len() <= self.user_events.max_frame && self.user_events.enqueue(frame) {
            self.stats.user_events_evicted += 1;
        }
        self.delivered.push_back(e);
    }

    /// Takes rumours for `budget` bytes of piggyback room. With user events waiting (and
    /// `events`), they take up to [`USER_EVENT_SHARE_PERCENT`] of it first, membership
    /// rumours the rest, and user events any room still left; otherwise membership rumours
    /// alone, exactly as before user events existed.
    ///
    /// `events` is false for a datagram to a member that may well be gone (see
    /// [`Swim::carries_events`]): each event is sent only a few times, and a crash makes
    /// every member ping the crashed one within milliseconds (a refused datagram starts a
    /// probe at once), which in the simulator spent a quarter of an event's sends on the
    /// dead member and left some live ones without it.
    pub(super) fn piggyback(&mut self, budget: usize, events: bool) -> Vec<Frame> {
        let limit = self.retransmit_limit();
        if !events || self.user_events.queue.is_empty() {
            return self.broadcasts.take(budget, limit);
        }
        let share = budget * USER_EVENT_SHARE_PERCENT / 100;
        let mut taken = Taken::default();
        let mut events = self.user_events.queue.take_more(share, limit, &mut taken);
        let used = |f: &[Frame]| f.iter().map(Frame::encoded_len).sum::<usize>();
        let mut frames = self.broadcasts.take(budget - used(&events), limit);
        let left = budget - used(&events) - used(&frames);
        events.extend(self.user_events.queue.take_more(left, limit, &mut taken));
        frames.extend(events);
        frames
    }

    /// Whether user events ride on a datagram of `msgs`: not on a ping. A ping goes where
    /// liveness is in question (a probe, a suspect's confirmation, a relay's ping, a dead
    /// member's reconnect, a refused address probed at once); the ack that answers a live
    /// member's ping carries them back instead.
    pub(super) fn carries_events(msgs: &[Message]) -> bool {
        !msgs.iter().any(|m| matches!(m, Message::Ping(_)))
    }

    /// Whether `name` is a member this node holds alive.
    pub(super) fn holds_alive(&self, name: &str) -> bool {
        self.members
            .get(name)
            .is_some_and(|r| r.member().state == crate::wire::State::Alive)
    }

    /// Forgets what `origin` sent, with its member record.
    pub(super) fn forget_user_events(&mut self, origin: &str) {
        self.user_events.forget(origin);
    }

    /// Forgets origins heard of that never became members.
    pub(super) fn reap_user_events(&mut self, now: Instant) {
        let members = &self.members;
        let me = self.me.name.as_str();
        self.user_events
            .reap_strangers(now, self.cfg.dead_retention, |n| {
                n == me || members.get(n).is_some()
            });
    }
}

/// This node's user event state: the largest frame it sends is the share of what a datagram
/// leaves for rumours once it carries its envelope (this mesh's label, a thousand frames'
/// count, the largest epoch, the two bytes of slack `send` keeps) and its largest probe (a
/// buddy suspicion and a ping, between the longest names). Any datagram carrying less than
/// that (every probe, ack, relay and gossip round; only a refutation with large metadata
/// carries more) has room for the largest event in its share.
pub(super) fn user_event_state(max_datagram: usize, label: &str) -> UserEventState {
    let longest = "n".repeat(crate::wire::MAX_NAME_LEN);
    let carrier = [
        Message::Update(Update::Suspect(Suspect {
            name: longest.clone(),
            run: u64::MAX,
            incarnation: u32::MAX,
            from: longest.clone(),
            reach: Some(crate::wire::Reach::HostUp),
        })),
        Message::Ping(Ping {
            seq: u32::MAX,
            target: longest,
        }),
    ];
    let carrier: usize = carrier
        .iter()
        .map(|m| codec::encode_frame(m).encoded_len())
        .sum();
    let overhead = codec::envelope_overhead(label, 1000) + codec::epoch_frame_len(u64::MAX) + 2;
    UserEventState::new(user_events::max_user_event_frame(
        max_datagram,
        overhead,
        carrier,
    ))
}
