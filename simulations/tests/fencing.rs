//! Fencing tokens under the real placement, in task mode (docs/FENCING.md, "What is
//! guaranteed"): over random joins, graceful leaves, crashes, restarts, long pauses and
//! partitions that heal, once the mesh has settled every task's owner holds it by a token
//! above the last token every other run held it by, so a compare-and-set store takes the
//! owner's writes and refuses every earlier holder's. Every holder's token is its current
//! (epoch, run), and every change that gains a task advances its epoch by two, one that
//! only loses tasks by one. Handoffs overlap and leave gaps only within the protocol's own bounds. Every wait is
//! a protocol bound (`swimring::proto::bounds`).

use std::collections::HashSet;
use std::time::Duration;

use proptest::prelude::*;
use swimring::placement::{FencingToken, GAIN_STEPS, LOSS_STEPS};
use swimring::proto::{Bounds, Config, bounds};
use swimring_sim::{Bug, Cluster, NodeId, PLACEMENT_DELAY};

/// One step of a random history. An index picks among the nodes the step applies to.
#[derive(Debug, Clone)]
enum Op {
    Join,
    Leave(usize),
    Crash(usize),
    Restart(usize),
    /// A member stalls until the others have declared it dead and taken its tasks, then
    /// resumes believing it still owns them.
    Pause(usize),
    /// The members split in two until each side has declared the other dead and taken its
    /// tasks, then the network heals.
    Split(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Join),
        2 => any::<usize>().prop_map(Op::Leave),
        3 => any::<usize>().prop_map(Op::Crash),
        3 => any::<usize>().prop_map(Op::Restart),
        1 => any::<usize>().prop_map(Op::Pause),
        1 => any::<usize>().prop_map(Op::Split),
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

    /// The longest a step takes to settle: a death detected, a heal merged (after a pause or
    /// a partition), a join known to all (which carries the epoch on its full-state
    /// exchanges), two placements.
    fn settle_bound(&self) -> Duration {
        let b = self.bounds();
        b.detect + b.heal + b.join + PLACEMENT_DELAY * 2
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

    /// Long enough for every member to declare a silent one dead and place its tasks. A
    /// stalled process on a live host (`stalled`) completes stream handshakes, so its
    /// suspicion lasts at least the stall patience instead of the maximum suspicion.
    fn until_declared(&mut self, stalled: bool) {
        let b = self.bounds();
        let patience = if stalled {
            self.cfg.stall_timeout.saturating_sub(b.max_suspicion)
        } else {
            Duration::ZERO
        };
        self.c.run_for(b.detect + patience + PLACEMENT_DELAY * 2);
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
            Op::Pause(i) if self.up.len() > 1 => {
                let n = pick(&self.up, i);
                self.c.pause(n);
                self.until_declared(true);
                self.c.resume(n);
            }
            // Each side keeps at least one member.
            Op::Split(i) if self.up.len() > 1 => {
                let side = &self.up[..1 + i % (self.up.len() - 1)];
                self.c.net.partition(side);
                self.until_declared(false);
                self.c.net.heal();
            }
            _ => {}
        }
    }
}

/// The first task whose owner a store would refuse now, by the owners' current epochs.
fn first_fenced_out(c: &Cluster) -> Option<String> {
    let tasks = c.tasks().expect("task mode");
    let f = *tasks.ledger.fenced_out(|id| c.node(id).epoch()).first()?;
    Some(format!(
        "{} is held by node {} at {}, not above {} that node {} last held it by",
        tasks.ledger.keys()[f.task as usize],
        f.node,
        f.token,
        f.earlier,
        f.by
    ))
}

/// Every change in the ledger's log that gained or lost a task advanced its node's epoch
/// by the placement rule (a gain by `GAIN_STEPS`, a loss alone by `LOSS_STEPS`), and its
/// token kept the node's run.
fn every_change_advanced_by_the_rule(c: &Cluster) -> Result<(), String> {
    let tasks = c.tasks().expect("task mode");
    for change in tasks.ledger.log() {
        let Some(after) = change.after else { continue };
        let steps = if change.acquired.is_empty() {
            LOSS_STEPS
        } else {
            GAIN_STEPS
        };
        let want = FencingToken {
            epoch: change.before.epoch + steps,
            run: change.run,
        };
        if after != want || change.before.run != change.run {
            return Err(format!(
                "at {:?} node {} went from {} to {}, not to {want}",
                change.at, change.node, change.before, after
            ));
        }
    }
    Ok(())
}

/// Every member holds its tasks by its current (epoch, run), the ledger's holders are
/// exactly the members' tasks, and each task has one.
fn tokens_are_current(m: &Mesh) -> Result<(), String> {
    let tasks = m.c.tasks().expect("task mode");
    let mut held = HashSet::new();
    for &n in &m.up {
        let me = m.c.node(n);
        let want = FencingToken {
            epoch: me.epoch(),
            run: me.local().run,
        };
        for owned in tasks.owned(n, me.epoch()) {
            if owned.token != want {
                return Err(format!("node {n} holds {} by {}", owned.key, owned.token));
            }
            let t = tasks.ledger.keys().iter().position(|k| *k == owned.key);
            let t = t.expect("a registered key") as u32;
            if !tasks.ledger.holders(t).contains(&(n, want.run)) {
                return Err(format!("the ledger lost node {n}'s {}", owned.key));
            }
            if !held.insert(t) {
                return Err(format!("{} is held twice", owned.key));
            }
        }
    }
    if held.len() != tasks.ledger.keys().len() {
        return Err(format!("members hold {} tasks, not one each", held.len()));
    }
    Ok(())
}

/// Runs a history, settling after every step and checking `check` there; the first step
/// that did not settle or broke a rule, if any.
fn run_history(
    (n, tasks, seed): (usize, usize, u64),
    ops: &[Op],
    bug: Bug,
    check: impl Fn(&Mesh) -> Result<(), String>,
) -> Result<(), String> {
    let mut m = Mesh::new(n, tasks, seed, bug);
    for (i, op) in std::iter::once(None)
        .chain(ops.iter().map(Some))
        .enumerate()
    {
        if let Some(op) = op {
            m.apply(op);
        }
        if !m.settle() {
            let bound = m.settle_bound();
            return Err(format!("step {i} ({op:?}) did not settle within {bound:?}"));
        }
        check(&m).map_err(|e| format!("after step {i} ({op:?}): {e}"))?;
    }
    Ok(())
}

/// No task's owner is fenced out.
fn none_fenced_out(m: &Mesh) -> Result<(), String> {
    first_fenced_out(&m.c).map_or(Ok(()), |f| Err(format!("fenced out: {f}")))
}

/// Runs a history under every rule; the first broken one, if any.
fn check_history(n: usize, tasks: usize, seed: u64, ops: &[Op], bug: Bug) -> Result<(), String> {
    run_history((n, tasks, seed), ops, bug, |m| {
        none_fenced_out(m)?;
        every_change_advanced_by_the_rule(&m.c)?;
        tokens_are_current(m)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_owner_outranks_every_earlier_holder_once_settled(
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

/// A joiner starts last, so it has the highest run, and its crash hands its tasks to older
/// runs: with claims that do not advance the epoch they take them at the epoch it held them
/// at, below its token, and a store refuses them for good.
#[test]
fn claims_that_do_not_advance_the_epoch_are_caught() {
    let ops = [Op::Join, Op::Crash(5), Op::Restart(0)];
    let err = run_history((6, 30, 1), &ops, Bug::StaleEpoch, none_fenced_out)
        .expect_err("the bug fences owners out");
    assert!(err.contains("fenced out"), "{err}");
    let err = check_history(6, 30, 1, &ops, Bug::StaleEpoch).expect_err("the bug is found");
    assert!(err.contains("not to"), "{err}");
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

/// A long pause and a partition both give tasks two owners for a while: the others declare
/// the stalled node (the other side) dead and claim its tasks, while it still runs them. Once
/// the mesh has settled the owner of each outranks the other, whichever keeps the task.
#[test]
fn a_pause_and_a_healed_partition_overlap_and_fence_nobody_out() {
    for seed in 1..=4 {
        let mut m = Mesh::new(8, 64, seed, Bug::None);
        for op in [Op::Pause(seed as usize), Op::Split(seed as usize)] {
            let (overlaps, _) = measure_step(&mut m, &op);
            assert!(!overlaps.is_empty(), "{op:?} contested no task");
            none_fenced_out(&m).unwrap_or_else(|e| panic!("seed {seed}, {op:?}: {e}"));
            tokens_are_current(&m).unwrap_or_else(|e| panic!("seed {seed}, {op:?}: {e}"));
        }
    }
}
