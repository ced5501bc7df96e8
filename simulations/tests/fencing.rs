//! Fencing tokens under the real placement, in task mode: over random joins, graceful leaves,
//! crashes and restarts, every claim of a task carries a token above every token issued for
//! it before; every token a node holds was issued by that node's run, and a node keeps its
//! token for as long as it keeps the task. Handoffs overlap and leave gaps only within the
//! protocol's own bounds. Every wait is a protocol bound (`swimring::proto::bounds`).

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use swimring::placement::FencingToken;
use swimring::proto::{Bounds, Config, bounds};
use swimring_sim::{Bug, Cluster, NodeId, PLACEMENT_DELAY};

/// One step of a random history. An index picks among the nodes the step applies to.
#[derive(Debug, Clone)]
enum Op {
    Join,
    Leave(usize),
    Crash(usize),
    Restart(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Join),
        2 => any::<usize>().prop_map(Op::Leave),
        3 => any::<usize>().prop_map(Op::Crash),
        3 => any::<usize>().prop_map(Op::Restart),
    ]
}

/// A mesh in task mode, with the nodes that are members and those that stopped.
struct Mesh {
    c: Cluster,
    cfg: Config,
    up: Vec<NodeId>,
    down: Vec<NodeId>,
}

impl Mesh {
    /// `n` nodes that start knowing each other (so their first claims are not concurrent),
    /// placing `tasks` keys.
    fn new(n: usize, tasks: usize, seed: u64, bug: Bug) -> Mesh {
        let cfg = Config::local();
        let mut c = Cluster::new(seed);
        c.set_recording(false);
        c.set_bug(bug);
        c.enable_tasks(tasks);
        let up = (0..n)
            .map(|i| c.add_node(&format!("n{i}"), cfg.clone()))
            .collect();
        c.introduce_all();
        Mesh {
            c,
            cfg,
            up,
            down: Vec::new(),
        }
    }

    fn bounds(&self) -> Bounds {
        bounds(&self.cfg, self.up.len() + self.down.len())
    }

    /// The longest a step takes to settle: a death detected, a join known to all (which
    /// carries the epoch on its full-state exchanges), two placements.
    fn settle_bound(&self) -> Duration {
        let b = self.bounds();
        b.detect + b.join + PLACEMENT_DELAY * 2
    }

    /// Whether the mesh has settled: every view agrees with the truth, every node has
    /// placed what it saw, every task has one holder, and every member has heard the
    /// highest epoch.
    fn settled(c: &Cluster, up: &[NodeId]) -> bool {
        let tasks = c.tasks().expect("task mode");
        let epochs: Vec<u64> = up.iter().map(|&i| c.node(i).epoch()).collect();
        c.metrics.all_agree()
            && tasks.all_placed()
            && tasks.ledger.settled()
            && epochs.windows(2).all(|w| w[0] == w[1])
    }

    /// Runs until the mesh has settled, within the protocol's bound; false if it did not.
    fn settle(&mut self) -> bool {
        let up = self.up.clone();
        let limit = self.settle_bound();
        self.c.run_until(limit, |c| Mesh::settled(c, &up))
    }

    fn apply(&mut self, op: &Op) {
        let pick = |v: &[NodeId], i: usize| v[i % v.len()];
        match *op {
            Op::Join => {
                let id = self.c.len();
                let seed = self.up[0];
                let n = self.c.add_node(&format!("n{id}"), self.cfg.clone());
                self.c.join(n, &[seed]);
                self.up.push(n);
            }
            // One member is kept, so the mesh never empties.
            Op::Leave(i) | Op::Crash(i) if self.up.len() > 1 => {
                let n = pick(&self.up[1..], i);
                self.up.retain(|&x| x != n);
                self.down.push(n);
                if matches!(op, Op::Leave(_)) {
                    self.c.leave(n);
                    // It gives its tasks up and tells the mesh before it stops.
                    let spread = self.bounds().spread + PLACEMENT_DELAY;
                    self.c.run_for(spread);
                }
                self.c.crash(n);
            }
            Op::Restart(i) if !self.down.is_empty() => {
                let n = pick(&self.down, i);
                self.down.retain(|&x| x != n);
                let seed = self.up[0];
                self.c.restart(n, &[seed]);
                self.up.push(n);
            }
            _ => {}
        }
    }
}

/// Every claim in the ledger's log, replayed: each token is above every token issued for
/// the task before it. Returns the first claim that is not.
fn first_stale_claim(c: &Cluster) -> Option<String> {
    let tasks = c.tasks().expect("task mode");
    let mut highest: HashMap<u32, (FencingToken, NodeId)> = HashMap::new();
    for change in tasks.ledger.log() {
        let Some(token) = change.token else { continue };
        for &t in &change.acquired {
            if let Some(&(h, by)) = highest.get(&t)
                && token <= h
            {
                return Some(format!(
                    "at {:?} node {} claimed {} with {token}, not above {h} issued to node {by}",
                    change.at,
                    change.node,
                    tasks.ledger.keys()[t as usize]
                ));
            }
            highest.insert(t, (token, change.node));
        }
    }
    None
}

/// Every member's tokens were issued by its current run, each is the token of its last
/// claim of that task in the log (kept while the task is kept), and the ledger's holders are
/// exactly the members' tasks.
fn tokens_are_own_and_kept(m: &Mesh) -> Result<(), String> {
    let tasks = m.c.tasks().expect("task mode");
    let mut claimed: HashMap<(NodeId, u32), FencingToken> = HashMap::new();
    for change in tasks.ledger.log() {
        for &t in &change.released {
            claimed.remove(&(change.node, t));
        }
        if let Some(token) = change.token {
            for &t in &change.acquired {
                claimed.insert((change.node, t), token);
            }
        }
    }
    let index: HashMap<&str, u32> = (tasks.ledger.keys().iter())
        .enumerate()
        .map(|(i, k)| (k.as_str(), i as u32))
        .collect();
    let mut held = 0;
    for &n in &m.up {
        let run = m.c.node(n).local().run;
        for owned in tasks.owned(n) {
            let t = index[owned.key.as_str()];
            held += 1;
            if owned.token.run != run {
                return Err(format!(
                    "node {n} (run {run}) holds {} by {}",
                    owned.key, owned.token
                ));
            }
            if claimed.get(&(n, t)) != Some(&owned.token) {
                return Err(format!(
                    "node {n} holds {} by {}, but its last claim of it was {:?}",
                    owned.key,
                    owned.token,
                    claimed.get(&(n, t))
                ));
            }
            if !tasks.ledger.holders(t).contains(&(n, owned.token)) {
                return Err(format!("the ledger lost node {n}'s {}", owned.key));
            }
        }
    }
    if held != tasks.ledger.keys().len() {
        return Err(format!("members hold {held} tasks, not one each"));
    }
    Ok(())
}

/// Runs a history; the first broken rule, if any.
fn check_history(n: usize, tasks: usize, seed: u64, ops: &[Op], bug: Bug) -> Result<(), String> {
    let mut m = Mesh::new(n, tasks, seed, bug);
    for (i, op) in std::iter::once(None)
        .chain(ops.iter().map(Some))
        .enumerate()
    {
        if let Some(op) = op {
            m.apply(op);
        }
        let settled = m.settle();
        if let Some(stale) = first_stale_claim(&m.c) {
            return Err(format!("after step {i} ({op:?}): {stale}"));
        }
        if !settled {
            let bound = m.settle_bound();
            return Err(format!("step {i} ({op:?}) did not settle within {bound:?}"));
        }
        tokens_are_own_and_kept(&m).map_err(|e| format!("after step {i} ({op:?}): {e}"))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn tokens_grow_across_every_handoff(
        n in 4usize..=12,
        tasks in 8usize..=40,
        seed in any::<u64>(),
        ops in proptest::collection::vec(op(), 1..8),
    ) {
        if let Err(e) = check_history(n, tasks, seed, &ops, Bug::None) {
            return Err(TestCaseError::fail(e));
        }
    }
}

#[test]
fn claims_that_do_not_advance_the_epoch_are_caught() {
    let ops = [Op::Crash(0), Op::Join, Op::Restart(0)];
    let err = check_history(6, 30, 1, &ops, Bug::StaleEpoch).expect_err("the bug is found");
    assert!(err.contains("not above"), "{err}");
    check_history(6, 30, 1, &ops, Bug::None).expect("and without it all holds");
}

/// The overlaps and gaps, in seconds, that one step on a settled mesh causes.
fn measure_step(m: &mut Mesh, op: &Op) -> (Vec<f64>, Vec<f64>) {
    assert!(m.settle(), "the mesh settles before the step");
    let ledger = &m.c.tasks().expect("task mode").ledger;
    let (o, g) = (ledger.overlaps().len(), ledger.gaps().len());
    m.apply(op);
    assert!(m.settle(), "{op:?} settles within {:?}", m.settle_bound());
    let ledger = &m.c.tasks().expect("task mode").ledger;
    (ledger.overlaps()[o..].to_vec(), ledger.gaps()[g..].to_vec())
}

/// A joiner claims once it has merged its seed's state, while the old owners run their
/// tasks until they hear of it: the overlap lasts at most the time a join takes to reach
/// everyone (the protocol's join bound) and the old owner's placement delay. A crash
/// overlaps nothing and leaves each task unowned at most until its new owner declares the
/// crash (the detection bound). A graceful leaver gives its tasks up before anyone can hear
/// of it, so nothing overlaps, and the gap lasts until the leave reaches the new owner.
#[test]
fn handoffs_overlap_and_gap_within_the_protocol_bounds() {
    let (mut join_overlaps, mut crash_gaps, mut leave_gaps) = (0, 0, 0);
    for seed in 1..=6 {
        let mut m = Mesh::new(8, 64, seed, Bug::None);
        let b = bounds(&m.cfg, 9);
        let bound = |d: Duration| (d + PLACEMENT_DELAY).as_secs_f64();
        let (overlaps, gaps) = measure_step(&mut m, &Op::Join);
        let within = |v: &[f64], d| v.iter().all(|&x| x <= bound(d));
        assert!(
            within(&overlaps, b.join),
            "join overlaps {overlaps:?} beyond {:?}",
            b.join
        );
        assert!(
            within(&gaps, b.join),
            "join gaps {gaps:?} beyond {:?}",
            b.join
        );
        join_overlaps += overlaps.len();

        let (overlaps, gaps) = measure_step(&mut m, &Op::Crash(seed as usize));
        assert!(overlaps.is_empty(), "a crash overlapped: {overlaps:?}");
        assert!(
            within(&gaps, b.detect),
            "crash gaps {gaps:?} beyond {:?}",
            b.detect
        );
        crash_gaps += gaps.len();

        let (overlaps, gaps) = measure_step(&mut m, &Op::Leave(seed as usize));
        assert!(overlaps.is_empty(), "a leave overlapped: {overlaps:?}");
        assert!(
            within(&gaps, b.join),
            "leave gaps {gaps:?} beyond {:?}",
            b.join
        );
        leave_gaps += gaps.len();
    }
    assert!(
        join_overlaps > 0 && crash_gaps > 0 && leave_gaps > 0,
        "the bounds were checked on real handoffs: {join_overlaps} join overlaps, \
         {crash_gaps} crash gaps, {leave_gaps} leave gaps"
    );
}
