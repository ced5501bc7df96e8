//! Placement inside the run loop: when the ring is rebuilt after membership changes, whether
//! this node may claim yet ([`JoinGate`]), and how each change reaches the snapshot and the
//! task subscribers. Kept out of the driver so the loop only says when, not how.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::claim::JoinGate;
use super::clock;
use super::driver::Shared;
use super::events::TaskChange;
use crate::placement::{Handoff, LocalTasks, PLACEMENT_DELAY};
use crate::proto::Swim;
use crate::ring::TaskTable;

/// The loop's placement state.
pub(crate) struct Placing {
    placer: LocalTasks,
    gate: JoinGate,
    /// When membership changed and the ring has yet to follow.
    due: Option<Instant>,
    /// How long the last ring rebuild took: the next waits at least four times that, so
    /// placement never takes more than a fifth of the loop's time.
    last_rebuild: Duration,
}

impl Placing {
    /// Placement that runs at once (the initial tasks and this node alone), unless `gate`
    /// holds claims until the join.
    pub(crate) fn new(placer: LocalTasks, gate: JoinGate, now: Instant) -> Placing {
        Placing {
            placer,
            gate,
            due: Some(now),
            last_rebuild: Duration::ZERO,
        }
    }

    /// The registered tasks and their owners.
    pub(crate) fn table(&self) -> &TaskTable<String> {
        self.placer.table()
    }

    /// Whether claims still wait for the join.
    pub(crate) fn waiting(&self) -> bool {
        !self.gate.is_open()
    }

    /// When the loop must call [`Placing::tick`] next, if it must.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match (self.due, self.gate.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Asks for a rebuild soon: membership changed (or the node may just have joined).
    pub(crate) fn schedule(&mut self, now: Instant) {
        if self.due.is_none() {
            self.due = Some(now + PLACEMENT_DELAY.max(self.last_rebuild * 4));
        }
    }

    /// Runs what is due at `now`: opens the gate once the node has `joined` or waited long
    /// enough, then, with the gate open, rebuilds the ring from `swim`'s view if the set that
    /// may own work changed, and tells subscribers what this node gained and lost.
    pub(crate) fn tick(
        &mut self,
        now: Instant,
        joined: bool,
        swim: &mut Swim,
        out: (&Shared, &broadcast::Sender<TaskChange>),
    ) {
        if self.gate.check(now, joined) {
            self.due = Some(now);
        }
        if !self.gate.is_open() {
            // Nothing is placed before the join: a change now is placed when the gate opens.
            self.due = None;
            return;
        }
        if self.due.is_none_or(|due| due > now) {
            return;
        }
        self.due = None;
        let started = clock::now();
        if let Some(change) = self.placer.update(swim) {
            self.last_rebuild = clock::now() - started;
            let ring = Arc::new(self.placer.ring().clone());
            write(out.0).ring = ring;
            self.publish(change, out);
        }
    }

    /// Registers task keys and publishes what this node gained.
    pub(crate) fn add(
        &mut self,
        keys: Vec<String>,
        swim: &mut Swim,
        out: (&Shared, &broadcast::Sender<TaskChange>),
    ) {
        let change = self.placer.add(keys, swim);
        self.publish(change, out);
    }

    /// Unregisters task keys and publishes what this node released.
    pub(crate) fn remove(
        &mut self,
        keys: &[String],
        swim: &mut Swim,
        out: (&Shared, &broadcast::Sender<TaskChange>),
    ) {
        let change = self.placer.remove(keys, swim);
        self.publish(change, out);
    }

    /// Refreshes the owned tasks in the snapshot, and sends the change if there is one.
    fn publish(
        &mut self,
        change: Handoff,
        (shared, tx): (&Shared, &broadcast::Sender<TaskChange>),
    ) {
        let table = self.placer.table();
        let mut snapshot = write(shared);
        snapshot.owned = table.owned_by(table.local()).cloned().collect();
        snapshot.token = change.token;
        snapshot.balance = self.placer.balance();
        drop(snapshot);
        if change.is_empty() {
            return;
        }
        tracing::info!(
            acquired = change.acquired.len(),
            released = change.released.len(),
            token = %change.token,
            "tasks reassigned"
        );
        // No subscriber is not an error: changes are dropped until someone listens.
        let _ = tx.send(TaskChange {
            acquired: change.acquired,
            released: change.released,
            token: change.token,
            ring_checksum: self.placer.ring().checksum(),
        });
    }
}

/// The snapshot, for writing; a poisoned lock still holds a whole snapshot.
fn write(shared: &Shared) -> std::sync::RwLockWriteGuard<'_, super::driver::Snapshot> {
    shared.snapshot.write().unwrap_or_else(|e| e.into_inner())
}
