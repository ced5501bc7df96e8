//! The ownership ledger of task mode: which nodes believe they own each task, over virtual
//! time, and what that says about handoffs.
//!
//! A *holder* of a task is a node that is not crashed (running or paused: a stalled process
//! still believes it owns its tasks and carries on with them when it resumes) and whose
//! `LocalTasks` owns the task. A task is in *overlap* while it has two or more holders and in
//! a *gap* while it has none. Both are measured from the instant the mesh first settled
//! (every view agreeing with the truth and every task held exactly once), so the cold start,
//! when nodes claim before they have heard of each other, is not counted.
//!
//! The ledger also checks the fencing rule as a store would see it: a claim whose token is
//! not above every token issued earlier for the same task would be refused by a store that
//! already accepted the higher one (or, if equal, could not be told apart from it).

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
    /// The token of everything in `acquired`.
    pub token: Option<FencingToken>,
    /// True when the node crashed: `released` is what it held, given up without a handoff.
    pub crashed: bool,
}

/// A claim a fencing store would refuse: its token is not above one issued earlier for the
/// same task.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StaleClaim {
    /// Virtual seconds.
    pub at_s: f64,
    /// The task's index.
    pub task: u32,
    /// The node that claimed.
    pub node: NodeId,
    /// The token it claimed with.
    pub token: FencingToken,
    /// The highest token issued for the task before.
    pub highest: FencingToken,
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
    /// Claims, after the mesh settled, whose token was not above every earlier token of the
    /// task.
    pub stale_claims: usize,
    /// The same before it settled: during the cold start nodes claim before they have heard
    /// of each other, so their claims are concurrent and their tokens unordered.
    pub stale_claims_before_settled: usize,
    /// The first 16 stale claims after the mesh settled.
    pub stale_examples: Vec<StaleClaim>,
    /// Tasks whose every holder at the end holds a token below the highest ever issued for
    /// them: a store that accepted that token refuses every current holder.
    pub fenced_out_at_end: usize,
    /// Tasks whose holder at the end holds a token equal to the highest, issued to another
    /// node: the two claims were concurrent, and every simulated node starts as run 1, so
    /// the tokens tie where real runs (start times) would order them either way.
    pub tied_at_end: usize,
}

#[derive(Debug, Clone, Default)]
struct TaskState {
    holders: Vec<(NodeId, FencingToken)>,
    /// When its current overlap or gap began.
    since: u64,
    /// The highest token issued for the task, and to whom.
    highest: Option<(FencingToken, NodeId)>,
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
    stale: Vec<StaleClaim>,
    /// Stale claims before and after the mesh settled.
    stale_count: [usize; 2],
}

const NANOS: f64 = 1e9;

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
            stale: Vec::new(),
            stale_count: [0; 2],
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

    /// The nodes that hold task `task` now, with their tokens.
    pub fn holders(&self, task: u32) -> &[(NodeId, FencingToken)] {
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

    /// Claims a store would refuse, after the mesh settled (the first 16).
    pub fn stale_claims(&self) -> &[StaleClaim] {
        &self.stale
    }

    /// How many stale claims there were, before the mesh settled and after.
    pub fn stale_count(&self) -> [usize; 2] {
        self.stale_count
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

    /// Records what node `node` (run `run`) gained and lost in one placement change.
    pub(crate) fn apply(&mut self, now: u64, node: NodeId, run: u64, change: &Handoff) {
        let released: Vec<u32> = change.released.iter().map(|k| self.index[k]).collect();
        let acquired: Vec<u32> = change.acquired.iter().map(|k| self.index[k]).collect();
        for &t in &released {
            self.drop_holder(now, t, node);
        }
        if let Some(token) = change.token {
            for &t in &acquired {
                self.add_holder(now, t, node, token);
            }
        }
        self.log.push(TaskChange {
            at: Duration::from_nanos(now),
            node,
            run,
            acquired,
            released,
            token: change.token,
            crashed: false,
        });
    }

    /// Node `node` crashed holding `held`: it holds nothing any more.
    pub(crate) fn crashed(&mut self, now: u64, node: NodeId, run: u64, held: &[String]) {
        let released: Vec<u32> = held.iter().map(|k| self.index[k]).collect();
        for &t in &released {
            self.drop_holder(now, t, node);
        }
        self.log.push(TaskChange {
            at: Duration::from_nanos(now),
            node,
            run,
            acquired: Vec::new(),
            released,
            token: None,
            crashed: true,
        });
    }

    fn add_holder(&mut self, now: u64, t: u32, node: NodeId, token: FencingToken) {
        let task = &mut self.tasks[t as usize];
        if let Some((highest, _)) = task.highest
            && token <= highest
        {
            let settled = self.measured_from.is_some();
            self.stale_count[usize::from(settled)] += 1;
            if settled && self.stale.len() < 16 {
                self.stale.push(StaleClaim {
                    at_s: now as f64 / NANOS,
                    task: t,
                    node,
                    token,
                    highest,
                });
            }
        }
        if task.highest.is_none_or(|(h, _)| token > h) {
            task.highest = Some((token, node));
        }
        if self.measured_from.is_some() {
            self.handoffs += 1;
        }
        self.change_holders(now, t, |h| h.push((node, token)));
    }

    fn drop_holder(&mut self, now: u64, t: u32, node: NodeId) {
        self.change_holders(now, t, |h| h.retain(|&(n, _)| n != node));
    }

    /// Edits a task's holders, closing the overlap or gap it ends and opening the one it
    /// starts.
    fn change_holders(
        &mut self,
        now: u64,
        t: u32,
        edit: impl FnOnce(&mut Vec<(NodeId, FencingToken)>),
    ) {
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

    /// What was measured by `now` (the end of the run): overlaps and gaps still open are
    /// cut there, counted, and included.
    pub fn summary(&self, now: u64) -> HandoffSummary {
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
        let (mut fenced_out_at_end, mut tied_at_end) = (0, 0);
        for t in &self.tasks {
            let Some((h, by)) = t.highest else { continue };
            let best = t.holders.iter().map(|&(_, k)| k).max();
            if best.is_some_and(|k| k < h) {
                fenced_out_at_end += 1;
            } else if best == Some(h) && !t.holders.contains(&(by, h)) {
                tied_at_end += 1;
            }
        }
        HandoffSummary {
            tasks: self.keys.len(),
            measured_from_s: self.measured_from.map(|t| t as f64 / NANOS),
            handoffs: self.handoffs,
            overlap_s: Spread::of(&overlaps),
            gap_s: Spread::of(&gaps),
            overlap_task_s: overlaps.iter().fold(0.0, |a, b| a + b),
            gap_task_s: gaps.iter().fold(0.0, |a, b| a + b),
            open_at_end,
            stale_claims: self.stale_count[1],
            stale_claims_before_settled: self.stale_count[0],
            stale_examples: self.stale.clone(),
            fenced_out_at_end,
            tied_at_end,
        }
    }
}
