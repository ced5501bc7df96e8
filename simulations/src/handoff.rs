//! The ownership ledger of task mode: which nodes believe they own each task, over virtual
//! time, and what that says about handoffs and fencing.
//!
//! A *holder* of a task is a node that is not crashed (running or paused: a stalled process
//! still believes it owns its tasks and carries on with them when it resumes) and whose
//! `LocalTasks` owns the task. A task is in *overlap* while it has two or more holders and in
//! a *gap* while it has none. Both are measured from the instant the mesh first settled
//! (every view agreeing with the truth and every task held exactly once), so the cold start,
//! when nodes claim before they have heard of each other, is not counted.
//!
//! Fencing, as a compare-and-set store sees it (docs/FENCING.md): a holder writes with its
//! *current* token, (its placement epoch, its run), which rises whenever its epoch does. So
//! the ledger keeps, per task and per node run that held it, the token that run *last* held
//! it by: at a release, its token just before the change (whose advance then
//! travels to the next owner); at a crash, its token at the crash. A paused holder keeps
//! holding, with whatever token it has. The owner of a task is *fenced out* while its current
//! token is not above every such last token of another run: a store that accepted that
//! run's last write refuses the owner's. Only the ledger's caller knows the nodes' current
//! epochs, so it asks ([`Ledger::fenced_out`]).

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use swimring::placement::{FencingToken, Handoff};

use crate::cluster::NodeId;
use crate::metrics::Spread;

/// One change of a node's task set, as the ledger saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskChange {
    /// Virtual time since the cluster started.
    pub at: Duration,
    /// The node.
    pub node: NodeId,
    /// Its run at the time.
    pub run: u64,
    /// Tasks it gained, as indices into [`Ledger::keys`].
    pub acquired: Vec<u32>,
    /// Tasks it gave up.
    pub released: Vec<u32>,
    /// Its token just before the change: the last token it held `released` by.
    pub before: FencingToken,
    /// Its token from the change on (`Handoff::token`), the first it holds `acquired` by;
    /// none at a crash.
    pub after: Option<FencingToken>,
    /// True when the node crashed: `released` is what it held, given up without a handoff.
    pub crashed: bool,
}

/// A claim whose token, at the claim, was not above the token another run last held the
/// task by: a store that accepted that run's writes refuses the new owner until its epoch
/// rises past (guarantee 3 of docs/FENCING.md: a concurrent change's rise still has to
/// arrive).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LowClaim {
    /// Virtual seconds.
    pub at_s: f64,
    /// The task's index.
    pub task: u32,
    /// The node that claimed.
    pub node: NodeId,
    /// The token it claimed with.
    pub token: FencingToken,
    /// The highest last token of another run, and that run's node.
    pub earlier: FencingToken,
    /// See `earlier`.
    pub by: NodeId,
}

/// A task whose owners all hold it by a token not above the last token another run held it
/// by: a store that accepted that run's last write refuses every one of them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FencedOut {
    /// The task's index.
    pub task: u32,
    /// Its holder (the first, if several).
    pub node: NodeId,
    /// That holder's current token.
    pub token: FencingToken,
    /// The highest last token of another run, and that run's node.
    pub earlier: FencingToken,
    /// See `earlier`.
    pub by: NodeId,
}

/// What the ledger measured, for `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct HandoffSummary {
    /// Task keys placed.
    pub tasks: usize,
    /// When the mesh first settled and measuring began (null: never, nothing measured).
    pub measured_from_s: Option<f64>,
    /// Acquisitions after that instant: each is one task passing to one new holder.
    pub handoffs: u64,
    /// Durations of the overlaps (two or more holders), seconds.
    pub overlap_s: Option<Spread>,
    /// Durations of the gaps (no holder), seconds.
    pub gap_s: Option<Spread>,
    /// Task-seconds spent in overlap and in gap, summed over the tasks.
    pub overlap_task_s: f64,
    /// See `overlap_task_s`.
    pub gap_task_s: f64,
    /// Overlaps and gaps still open at the end (cut there and counted above).
    pub open_at_end: usize,
    /// Claims, after the mesh settled, whose token at the claim was not above the last token
    /// of another run that held the task before (see [`LowClaim`]).
    pub low_claims: usize,
    /// The same before it settled: during the cold start nodes claim before they have heard
    /// of each other.
    pub low_claims_before_settled: usize,
    /// The first 16 low claims after the mesh settled.
    pub low_examples: Vec<LowClaim>,
    /// Tasks fenced out at the end, by their holders' current tokens (see [`FencedOut`]).
    pub fenced_out_at_end: usize,
    /// The first 16 of them.
    pub fenced_examples: Vec<FencedOut>,
}

/// One node run that held a task and stopped: the token it last held the task by.
#[derive(Debug, Clone, Copy)]
struct Ended {
    node: NodeId,
    run: u64,
    token: FencingToken,
}

#[derive(Debug, Clone, Default)]
struct TaskState {
    /// The node runs holding it now.
    holders: Vec<(NodeId, u64)>,
    /// When its current overlap or gap began.
    since: u64,
    /// Every run that held it and stopped, with its last token (a run's tokens only rise, so
    /// its latest stop is its highest).
    ended: Vec<Ended>,
}

/// Whether a task is held once, by nobody, or by several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holding {
    Gap,
    Single,
    Overlap,
}

impl TaskState {
    fn holding(&self) -> Holding {
        match self.holders.len() {
            0 => Holding::Gap,
            1 => Holding::Single,
            _ => Holding::Overlap,
        }
    }

    /// The highest last token of a run other than `run` of `node`, with its node.
    fn earlier_than(&self, node: NodeId, run: u64) -> Option<(FencingToken, NodeId)> {
        (self.ended.iter())
            .filter(|e| (e.node, e.run) != (node, run))
            .map(|e| (e.token, e.node))
            .max()
    }

    /// Records that `node`'s run `run` stopped holding it with `token`.
    fn end(&mut self, node: NodeId, run: u64, token: FencingToken) {
        match self
            .ended
            .iter_mut()
            .find(|e| (e.node, e.run) == (node, run))
        {
            Some(e) => e.token = e.token.max(token),
            None => self.ended.push(Ended { node, run, token }),
        }
    }
}

/// Every task's holders, with the log of changes and the overlap and gap measurements.
#[derive(Debug)]
pub struct Ledger {
    keys: Vec<String>,
    index: HashMap<String, u32>,
    tasks: Vec<TaskState>,
    log: Vec<TaskChange>,
    /// Tasks not held exactly once.
    unsettled: usize,
    measured_from: Option<u64>,
    handoffs: u64,
    overlaps: Vec<f64>,
    gaps: Vec<f64>,
    low: Vec<LowClaim>,
    /// Low claims before and after the mesh settled.
    low_count: [usize; 2],
}

const NANOS: f64 = 1e9;

/// How many examples the summary lists.
const EXAMPLES: usize = 16;

impl Ledger {
    /// A ledger of `n` tasks named `task-0` … , none held yet.
    pub(crate) fn new(n: usize) -> Ledger {
        let keys: Vec<String> = (0..n).map(|i| format!("task-{i}")).collect();
        let index = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i as u32))
            .collect();
        Ledger {
            keys,
            index,
            tasks: vec![TaskState::default(); n],
            log: Vec::new(),
            unsettled: n,
            measured_from: None,
            handoffs: 0,
            overlaps: Vec::new(),
            gaps: Vec::new(),
            low: Vec::new(),
            low_count: [0; 2],
        }
    }

    /// The task keys, in index order.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// Every change so far, in the order it happened.
    pub fn log(&self) -> &[TaskChange] {
        &self.log
    }

    /// The node runs that hold task `task` now, as (node, run).
    pub fn holders(&self, task: u32) -> &[(NodeId, u64)] {
        &self.tasks[task as usize].holders
    }

    /// Whether every task has exactly one holder.
    pub fn settled(&self) -> bool {
        self.unsettled == 0
    }

    /// Overlap durations measured so far, seconds (open ones excluded).
    pub fn overlaps(&self) -> &[f64] {
        &self.overlaps
    }

    /// Gap durations measured so far, seconds (open ones excluded).
    pub fn gaps(&self) -> &[f64] {
        &self.gaps
    }

    /// Low claims after the mesh settled (the first 16).
    pub fn low_claims(&self) -> &[LowClaim] {
        &self.low
    }

    /// How many low claims there were, before the mesh settled and after.
    pub fn low_count(&self) -> [usize; 2] {
        self.low_count
    }

    /// Whether measuring has begun.
    pub fn measuring(&self) -> bool {
        self.measured_from.is_some()
    }

    /// Starts measuring at `now` if it has not started and every task is held once: the
    /// caller says when the views agree.
    pub(crate) fn start_if_settled(&mut self, now: u64) {
        if self.measured_from.is_none() && self.settled() {
            self.measured_from = Some(now);
        }
    }

    /// Records what node `node` (run `run`) gained and lost in one placement change, `before`
    /// being its token just before it.
    pub(crate) fn apply(
        &mut self,
        now: u64,
        (node, run): (NodeId, u64),
        before: FencingToken,
        change: &Handoff,
    ) {
        let released: Vec<u32> = change.released.iter().map(|k| self.index[k]).collect();
        let acquired: Vec<u32> = change.acquired.iter().map(|k| self.index[k]).collect();
        for &t in &released {
            self.drop_holder(now, t, (node, run), before);
        }
        for &t in &acquired {
            self.add_holder(now, t, (node, run), change.token);
        }
        self.log.push(TaskChange {
            at: Duration::from_nanos(now),
            node,
            run,
            acquired,
            released,
            before,
            after: Some(change.token),
            crashed: false,
        });
    }

    /// Node `node` (run `run`) crashed holding `held` by `token`: it holds nothing any more.
    pub(crate) fn crashed(
        &mut self,
        now: u64,
        (node, run): (NodeId, u64),
        token: FencingToken,
        held: &[String],
    ) {
        let released: Vec<u32> = held.iter().map(|k| self.index[k]).collect();
        for &t in &released {
            self.drop_holder(now, t, (node, run), token);
        }
        self.log.push(TaskChange {
            at: Duration::from_nanos(now),
            node,
            run,
            acquired: Vec::new(),
            released,
            before: token,
            after: None,
            crashed: true,
        });
    }

    fn add_holder(&mut self, now: u64, t: u32, (node, run): (NodeId, u64), token: FencingToken) {
        if let Some((earlier, by)) = self.tasks[t as usize].earlier_than(node, run)
            && token <= earlier
        {
            let settled = self.measured_from.is_some();
            self.low_count[usize::from(settled)] += 1;
            if settled && self.low.len() < EXAMPLES {
                self.low.push(LowClaim {
                    at_s: now as f64 / NANOS,
                    task: t,
                    node,
                    token,
                    earlier,
                    by,
                });
            }
        }
        if self.measured_from.is_some() {
            self.handoffs += 1;
        }
        self.change_holders(now, t, |h| h.push((node, run)));
    }

    fn drop_holder(&mut self, now: u64, t: u32, (node, run): (NodeId, u64), last: FencingToken) {
        self.tasks[t as usize].end(node, run, last);
        self.change_holders(now, t, |h| h.retain(|&x| x != (node, run)));
    }

    /// Edits a task's holders, closing the overlap or gap it ends and opening the one it
    /// starts.
    fn change_holders(&mut self, now: u64, t: u32, edit: impl FnOnce(&mut Vec<(NodeId, u64)>)) {
        let task = &mut self.tasks[t as usize];
        let before = task.holding();
        edit(&mut task.holders);
        let after = task.holding();
        if before == after {
            return;
        }
        let since = std::mem::replace(&mut task.since, now);
        self.unsettled = match (before, after) {
            (Holding::Single, _) => self.unsettled + 1,
            (_, Holding::Single) => self.unsettled - 1,
            _ => self.unsettled,
        };
        if self.measured_from.is_some() {
            let d = (now - since) as f64 / NANOS;
            match before {
                Holding::Overlap => self.overlaps.push(d),
                Holding::Gap => self.gaps.push(d),
                Holding::Single => {}
            }
        }
    }

    /// The tasks held now whose every holder is fenced out, `epoch` giving each holder's
    /// current placement epoch. Tasks held by nobody are not listed (they are in a gap).
    pub fn fenced_out(&self, epoch: impl Fn(NodeId) -> u64) -> Vec<FencedOut> {
        let mut out = Vec::new();
        for (t, task) in self.tasks.iter().enumerate() {
            let verdicts = task.holders.iter().map(|&(node, run)| {
                let token = FencingToken {
                    epoch: epoch(node),
                    run,
                };
                let earlier = task.earlier_than(node, run);
                let fenced = earlier.filter(|&(e, _)| token <= e);
                fenced.map(|(earlier, by)| FencedOut {
                    task: t as u32,
                    node,
                    token,
                    earlier,
                    by,
                })
            });
            let verdicts: Option<Vec<FencedOut>> = verdicts.collect();
            if let Some(first) = verdicts.and_then(|v| v.first().copied()) {
                out.push(first);
            }
        }
        out
    }

    /// What was measured by `now` (the end of the run): overlaps and gaps still open are
    /// cut there, counted, and included; `epoch` gives each holder's epoch now.
    pub fn summary(&self, now: u64, epoch: impl Fn(NodeId) -> u64) -> HandoffSummary {
        let (mut overlaps, mut gaps) = (self.overlaps.clone(), self.gaps.clone());
        let mut open_at_end = 0;
        for task in self.tasks.iter().filter(|_| self.measuring()) {
            let d = (now - task.since) as f64 / NANOS;
            match task.holding() {
                Holding::Overlap => overlaps.push(d),
                Holding::Gap => gaps.push(d),
                Holding::Single => continue,
            }
            open_at_end += 1;
        }
        let mut fenced = self.fenced_out(epoch);
        let fenced_out_at_end = fenced.len();
        fenced.truncate(EXAMPLES);
        HandoffSummary {
            tasks: self.keys.len(),
            measured_from_s: self.measured_from.map(|t| t as f64 / NANOS),
            handoffs: self.handoffs,
            overlap_s: Spread::of(&overlaps),
            gap_s: Spread::of(&gaps),
            overlap_task_s: overlaps.iter().fold(0.0, |a, b| a + b),
            gap_task_s: gaps.iter().fold(0.0, |a, b| a + b),
            open_at_end,
            low_claims: self.low_count[1],
            low_claims_before_settled: self.low_count[0],
            low_examples: self.low.clone(),
            fenced_out_at_end,
            fenced_examples: fenced,
        }
    }
}
