//! User events in the simulated mesh: a node broadcasts one, and every node's deliveries
//! are kept, stamped with virtual time, for tests and scenarios to check (each node once,
//! within the dissemination bound).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use swimring::proto::{UserEvent, UserEventError};

use super::{Cluster, NodeId};
use crate::metrics::Spread;

/// What identifies a user event: its origin's name and run, and its sequence number.
type EventId = (String, u64, u64);

fn id_of(e: &UserEvent) -> EventId {
    (e.from.clone(), e.run, e.seq)
}

/// A user event a node delivered, with the virtual time it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveredEvent {
    /// Virtual time since the cluster started.
    pub at: Duration,
    /// The run of the node that delivered it (a restart delivers afresh).
    pub run: u64,
    /// The event.
    pub event: UserEvent,
}

/// How far and how fast the user events broadcast in a run spread: the summary's
/// `user_events`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserEventReach {
    /// Events broadcast (and accepted by their origin's core).
    pub broadcast: usize,
    /// Of the pairs (event, node running at the end), the share that delivered it.
    pub delivered_fraction: f64,
    /// Broadcast to the last running node's delivery, over the events every running node
    /// delivered, seconds.
    pub reach_all_s: Option<Spread>,
    /// Deliveries of an event one run of a node had delivered before: the protocol allows
    /// none.
    pub duplicates: usize,
}

/// Every slot's deliveries, in order (a restarted node's slot keeps its earlier runs'),
/// and the events broadcast, with when.
#[derive(Debug, Default)]
pub(super) struct UserEventLog {
    per_node: Vec<Vec<DeliveredEvent>>,
    sent: Vec<(Duration, EventId)>,
}

impl Cluster {
    /// Node `id` broadcasts a user event (see [`swimring::proto::Swim::broadcast`]); it
    /// delivers it itself at once.
    pub fn broadcast(
        &mut self,
        id: NodeId,
        name: &str,
        payload: impl Into<Bytes>,
    ) -> Result<u64, UserEventError> {
        let now = self.instant(self.now);
        let r = self.nodes[id].swim.broadcast(now, name, payload.into());
        if let Ok(seq) = r {
            let me = self.nodes[id].swim.local();
            let sent = (
                Duration::from_nanos(self.now),
                (me.name.clone(), me.run, seq),
            );
            self.user_events.sent.push(sent);
        }
        self.drain(id);
        r
    }

    /// How far the events broadcast so far have spread to the nodes running now; `None` if
    /// none was broadcast.
    pub fn user_event_reach(&self) -> Option<UserEventReach> {
        let sent = &self.user_events.sent;
        if sent.is_empty() {
            return None;
        }
        let running: Vec<NodeId> = (0..self.nodes.len())
            .filter(|&i| self.is_running(i))
            .collect();
        // Per event: when each running node first delivered it.
        let mut first: HashMap<&EventId, Vec<Duration>> = HashMap::new();
        let mut duplicates = 0;
        for &n in &running {
            let mut seen: HashMap<EventId, Duration> = HashMap::new();
            let mut by_run: HashSet<(u64, EventId)> = HashSet::new();
            for d in self.user_events(n) {
                duplicates += usize::from(!by_run.insert((d.run, id_of(&d.event))));
                seen.entry(id_of(&d.event)).or_insert(d.at);
            }
            for (at, id) in sent {
                if let Some(&t) = seen.get(id) {
                    first.entry(id).or_default().push(t.saturating_sub(*at));
                }
            }
        }
        let delivered: usize = first.values().map(Vec::len).sum();
        let all: Vec<f64> = first
            .values()
            .filter(|v| v.len() == running.len())
            .filter_map(|v| v.iter().max().map(Duration::as_secs_f64))
            .collect();
        Some(UserEventReach {
            broadcast: sent.len(),
            delivered_fraction: delivered as f64 / (sent.len() * running.len()).max(1) as f64,
            reach_all_s: Spread::of(&all),
            duplicates,
        })
    }

    /// The user events node `id` has delivered, in order.
    pub fn user_events(&self, id: NodeId) -> &[DeliveredEvent] {
        self.user_events
            .per_node
            .get(id)
            .map_or(&[], |v| v.as_slice())
    }

    /// Keeps what node `id` delivered since its last input.
    pub(super) fn drain_user_events(&mut self, id: NodeId) {
        let at = Duration::from_nanos(self.now);
        let run = self.nodes[id].swim.local().run;
        while let Some(event) = self.nodes[id].swim.poll_user_event() {
            let log = &mut self.user_events.per_node;
            if log.len() <= id {
                log.resize_with(id + 1, Vec::new);
            }
            log[id].push(DeliveredEvent { at, run, event });
        }
    }
}
