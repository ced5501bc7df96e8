//! Task mode: every node holds the library's own [`LocalTasks`] over the same task keys and
//! follows its own view with it, as the tokio runtime does (src/runtime/placing.rs), so the
//! simulator measures the real placement and the real fencing tokens.
//!
//! Like the runtime, a node places a short delay after a membership change (so changes that
//! arrive together are placed once), and a node that joined through seeds claims nothing
//! until it has merged a full state from a member. Three differences, all deliberate: the
//! runtime stretches the delay to four times its last rebuild's wall time, which would make
//! the trace depend on the machine; it gives up waiting for the join after a bounded wait,
//! which no scenario here needs (seeds are running nodes, which answer); and a node that
//! never joined anyone (the seed of a cold start) claims on its first membership change
//! rather than at boot, since the simulator cannot tell at boot whether a join will follow.
//!
//! Runs are the runtime's too: with task mode on, a node's run is the virtual millisecond it
//! started at, above every run handed out before (src/runtime/clock.rs), so runs are distinct
//! and grow across restarts. Fencing tokens order two owners at one epoch by run, and with
//! every node at run 1 (task mode off, where the trace must not change) they would tie.

use swimring::placement::{
    Epoch, Handoff, LocalTasks, OwnedTask, PLACEMENT_DELAY, PlacementConfig,
};
use swimring::proto::Swim;

use crate::cluster::NodeId;
use crate::handoff::Ledger;

/// One run of one node: its task table and where its placement stands.
#[derive(Debug)]
struct NodeTasks {
    tasks: LocalTasks,
    run: u64,
    /// Whether this run joined through seeds: then it claims only once it has joined.
    seeded: bool,
    /// Whether claims follow the view yet.
    open: bool,
    /// The virtual instant placement is due at, if a change awaits it.
    due: Option<u64>,
}

/// The task tables of every node, and the ledger of who holds what.
#[derive(Debug)]
pub struct Tasks {
    nodes: Vec<Option<NodeTasks>>,
    /// Changes without advancing the epoch (the injected [`Bug::StaleEpoch`](crate::Bug)).
    stale_epoch: bool,
    /// The last run handed out.
    last_run: u64,
    /// Who holds what, and what the handoffs measured.
    pub ledger: Ledger,
}

impl Tasks {
    /// Task mode over `n` task keys.
    pub(crate) fn new(n: usize) -> Tasks {
        Tasks {
            nodes: Vec::new(),
            stale_epoch: false,
            last_run: 0,
            ledger: Ledger::new(n),
        }
    }

    /// Makes every later placement change leave the epoch where it was instead of advancing
    /// it.
    pub(crate) fn set_stale_epoch(&mut self, on: bool) {
        self.stale_epoch = on;
    }

    /// The run of a node starting at virtual instant `now` (ns): its millisecond, counted
    /// from 1, or one above the last run handed out if that is higher.
    pub(crate) fn next_run(&mut self, now: u64) -> u64 {
        let ms = now / 1_000_000 + 1;
        self.last_run = ms.max(self.last_run + 1);
        self.last_run
    }

    /// Node `id` starts a run (a new node or a restart) with every task registered and none
    /// owned: its ring is empty until its first placement.
    pub(crate) fn boot(&mut self, id: NodeId, swim: &mut Swim) {
        let me = swim.local();
        let (name, run) = (me.name.clone(), me.run);
        let mut tasks = LocalTasks::new(&name, run, PlacementConfig::default());
        let gained = tasks.add(self.ledger.keys().iter().cloned(), swim);
        debug_assert!(gained.is_empty(), "an empty ring places nothing");
        if self.nodes.len() <= id {
            self.nodes.resize_with(id + 1, || None);
        }
        self.nodes[id] = Some(NodeTasks {
            tasks,
            run,
            seeded: false,
            open: true,
            due: None,
        });
    }

    /// Node `id` joins through `seeds`: with any, its claims wait for the join.
    pub(crate) fn join(&mut self, id: NodeId, seeds: bool) {
        if let Some(n) = self.nodes[id].as_mut()
            && seeds
        {
            n.seeded = true;
            n.open = false;
        }
    }

    /// Whether node `id` waits for its join while `swim` has merged a full state: then it
    /// must place now, not at its next membership change.
    pub(crate) fn joined_while_waiting(&self, id: NodeId, swim: &Swim) -> bool {
        self.nodes[id]
            .as_ref()
            .is_some_and(|n| !n.open && swim.stats().states_merged > 0)
    }

    /// Asks for a placement of node `id` a placement delay after `now`. Returns the instant
    /// to wake it at, unless one is already due.
    pub(crate) fn request(&mut self, id: NodeId, now: u64) -> Option<u64> {
        let n = self.nodes[id].as_mut()?;
        if n.due.is_some() {
            return None;
        }
        let at = now + PLACEMENT_DELAY.as_nanos() as u64;
        n.due = Some(at);
        Some(at)
    }

    /// Whether every node that has not crashed has placed all it has seen: its claims follow
    /// its view (it has joined, or needs not) and no placement is due.
    pub fn all_placed(&self) -> bool {
        self.nodes
            .iter()
            .flatten()
            .all(|n| n.open && n.due.is_none())
    }

    /// The placement still due for node `id` (one that fell due while it was paused).
    pub(crate) fn due(&self, id: NodeId) -> Option<u64> {
        self.nodes[id].as_ref().and_then(|n| n.due)
    }

    /// Runs node `id`'s due placement for its run `run` at `now`: opens the join gate if it
    /// may, then follows the view. Returns a digest of the change for the trace, if anything
    /// changed.
    pub(crate) fn place(&mut self, id: NodeId, run: u64, now: u64, swim: &mut Swim) -> Option<u64> {
        let n = self.nodes[id].as_mut().filter(|n| n.run == run)?;
        n.due = None;
        n.open = n.open || !n.seeded || swim.stats().states_merged > 0;
        if !n.open {
            return None;
        }
        let before = n.tasks.token(swim.epoch());
        let change = if self.stale_epoch {
            n.tasks
                .update_with(swim.members(), &mut Frozen(before.epoch))
        } else {
            n.tasks.update(swim)
        };
        match change {
            Some(change) if !change.is_empty() => {
                self.ledger.apply(now, (id, run), before, &change);
                Some(trace_code(&change))
            }
            _ => None,
        }
    }

    /// Node `id` crashed at placement epoch `epoch`: what it held is lost with it, last held
    /// by the token of that epoch.
    pub(crate) fn crash(&mut self, id: NodeId, now: u64, epoch: u64) {
        if let Some(n) = self.nodes[id].take() {
            let held: Vec<String> = n.tasks.owned(epoch).map(|t| t.key).collect();
            self.ledger
                .crashed(now, (id, n.run), n.tasks.token(epoch), &held);
        }
    }

    /// The tasks node `id` owns now, held by the token of its epoch `epoch` (none when
    /// crashed).
    pub fn owned(&self, id: NodeId, epoch: u64) -> Vec<OwnedTask> {
        self.nodes
            .get(id)
            .and_then(Option::as_ref)
            .map_or_else(Vec::new, |n| n.tasks.owned(epoch).collect())
    }
}

/// The epoch of [`Bug::StaleEpoch`](crate::Bug): a change that should advance it leaves it
/// where it was, so a new owner claims at the epoch its predecessor may still hold.
struct Frozen(u64);

impl Epoch for Frozen {
    fn current(&self) -> u64 {
        self.0
    }
    fn advance(&mut self, _steps: u64) -> u64 {
        self.0
    }
}

/// A digest of a change for the trace hash: its token and sizes, above the action codes the
/// metrics use for faults (below 2^32).
fn trace_code(change: &Handoff) -> u64 {
    let epoch = change.token.epoch;
    let sizes = (change.acquired.len() as u64) << 16 ^ change.released.len() as u64;
    1 << 32 | (epoch.wrapping_mul(0x9E37_79B9) ^ sizes) & 0xFFFF_FFFF
}
