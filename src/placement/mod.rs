//! Work placement for a running mesh: which members may own work, with what weight, and the
//! task table kept in step with the membership view.
//!
//! Ownership is a pure function of the view: the members that are alive or suspect (a stalled
//! node keeps its tasks, so a stall causes no reshuffle), optionally only those whose tags
//! match a filter, each weighted by its `weight` tag. Dead and left members own nothing.
//! Every task a node claims comes with a [`FencingToken`].

mod balance;
mod token;

pub use balance::{Balance, MemberLoad};
pub use token::{FencingToken, Handoff, OwnedTask};

use std::time::Duration;

use crate::proto::{Member, Swim};
use crate::ring::{
    self, LoadPolicy, MAX_POINTS, NORMAL_WEIGHT, Reassignment, Ring, RingConfig, TaskTable,
};

/// The tag that scales a member's share of the work: `weight=200` owns twice the normal
/// share, `weight=0` none. Absent or unreadable, the weight is 100.
pub const WEIGHT_TAG: &str = "weight";

/// How a mesh places work on its members.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PlacementConfig {
    /// Virtual nodes per member of normal weight. Every member of a mesh must use the same
    /// value, or views will disagree on owners.
    pub vnodes_per_member: u32,
    /// Plain consistent hashing, or bounded loads for the registered tasks.
    pub policy: LoadPolicy,
    /// Only members carrying this tag (key, value) own work, e.g. `("role", "worker")`.
    pub filter: Option<(String, String)>,
}

impl Default for PlacementConfig {
    fn default() -> Self {
        PlacementConfig {
            vnodes_per_member: ring::DEFAULT_VNODES_PER_MEMBER,
            policy: LoadPolicy::Consistent,
            filter: None,
        }
    }
}

/// The members that may own work, with their weights, sorted by name.
pub fn eligible<'a>(
    cfg: &PlacementConfig,
    members: impl IntoIterator<Item = &'a Member>,
) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = members
        .into_iter()
        .filter(|m| m.state.is_live())
        .filter_map(|m| {
            let tags = m.tags();
            if let Some((k, v)) = &cfg.filter
                && tags.get(k) != Some(v)
            {
                return None;
            }
            let weight = tags
                .get(WEIGHT_TAG)
                .and_then(|w| w.parse::<u32>().ok())
                .unwrap_or(NORMAL_WEIGHT)
                .min(ring::MAX_WEIGHT);
            Some((m.name.clone(), weight))
        })
        .collect();
    out.sort();
    out
}

/// Builds the ring for an eligible set. Past the ring's point budget the virtual nodes per
/// member shrink, as a function of the set alone, so every peer still builds the same ring.
pub fn build_ring(cfg: &PlacementConfig, eligible: &[(String, u32)]) -> Ring {
    let total: u64 = eligible.iter().map(|(_, w)| u64::from(*w)).sum();
    let budget = (MAX_POINTS * u64::from(NORMAL_WEIGHT)) / total.max(1);
    let vnodes = u64::from(cfg.vnodes_per_member).min(budget).max(1) as u32;
    let config = RingConfig {
        vnodes_per_member: vnodes,
    };
    Ring::new(config, eligible.iter().map(|(n, w)| (n.as_str(), *w)))
        .expect("eligible names are unique and weights capped")
}

/// The task table of one node, kept in step with its view, and the rule that moves its
/// placement epoch: every gain or loss of a task advances it.
#[derive(Debug)]
pub struct LocalTasks {
    cfg: PlacementConfig,
    run: u64,
    eligible: Vec<(String, u32)>,
    table: TaskTable<String>,
}

impl LocalTasks {
    /// The tasks of the node named `local` in its run `run`, owning nothing until the first
    /// view.
    pub fn new(local: &str, run: u64, cfg: PlacementConfig) -> LocalTasks {
        let policy = cfg.policy;
        LocalTasks {
            cfg,
            run,
            eligible: Vec::new(),
            table: TaskTable::new(local, policy),
        }
    }

    /// The ring in force.
    pub fn ring(&self) -> &Ring {
        self.table.ring()
    }

    /// The task table.
    pub fn table(&self) -> &TaskTable<String> {
        &self.table
    }

    /// How the registered tasks are spread over the members that may own work.
    pub fn balance(&self) -> Balance {
        let mut members: Vec<MemberLoad> = self
            .eligible
            .iter()
            .map(|(name, weight)| MemberLoad {
                name: name.clone(),
                weight: *weight,
                tasks: 0,
            })
            .collect();
        for (_, owner) in self.table.assignment() {
            // `eligible` is sorted by name, and every owner is on the ring built from it.
            if let Some(i) =
                owner.and_then(|o| members.binary_search_by(|m| m.name.as_str().cmp(o)).ok())
            {
                members[i].tasks += 1;
            }
        }
        Balance {
            members,
            tasks: self.table.len(),
        }
    }

    /// The token this node holds its tasks by when its placement epoch is `epoch`.
    pub fn token(&self, epoch: u64) -> FencingToken {
        FencingToken {
            epoch,
            run: self.run,
        }
    }

    /// The tasks this node owns, in key order, held by the token of `epoch`.
    pub fn owned(&self, epoch: u64) -> impl Iterator<Item = OwnedTask> + '_ {
        let token = self.token(epoch);
        self.table
            .owned_by(self.table.local())
            .map(move |key| OwnedTask {
                key: key.clone(),
                token,
            })
    }

    /// Follows `swim`'s view: rebuilds the ring if the set that may own work changed, and
    /// advances `swim`'s epoch if this node gained or lost a task. `None` when the set is
    /// unchanged.
    pub fn update(&mut self, swim: &mut Swim) -> Option<Handoff> {
        let eligible = eligible(&self.cfg, swim.members());
        self.rebuild(eligible, swim)
    }

    /// [`LocalTasks::update`] for a view and an epoch held elsewhere.
    pub fn update_with<'a>(
        &mut self,
        members: impl IntoIterator<Item = &'a Member>,
        epoch: &mut impl Epoch,
    ) -> Option<Handoff> {
        let eligible = eligible(&self.cfg, members);
        self.rebuild(eligible, epoch)
    }

    fn rebuild(&mut self, eligible: Vec<(String, u32)>, epoch: &mut impl Epoch) -> Option<Handoff> {
        if eligible == self.eligible {
            return None;
        }
        let ring = build_ring(&self.cfg, &eligible);
        self.eligible = eligible;
        let change = self.table.update_ring(&ring);
        Some(self.handoff(change, epoch))
    }

    /// Registers task keys; those that land here are gained.
    pub fn add(
        &mut self,
        keys: impl IntoIterator<Item = String>,
        epoch: &mut impl Epoch,
    ) -> Handoff {
        let change = self.table.insert_all(keys);
        self.handoff(change, epoch)
    }

    /// Unregisters task keys; the local node loses those it owned.
    pub fn remove(&mut self, keys: &[String], epoch: &mut impl Epoch) -> Handoff {
        let mut change = Reassignment::default();
        for k in keys {
            change.released.extend(self.table.remove(k).released);
        }
        change.released.sort();
        self.handoff(change, epoch)
    }

    /// The one rule for tokens: a change that gains or loses a task advances the epoch.
    ///
    /// A loss advances it by one: the rise reaches the task's next owner, whose token then
    /// ends above the one this node held the task by. A gain advances it by two, to claim
    /// above everything heard and one more: the previous owner may have crashed right after
    /// its own last rise, before any packet carried it, and written at that epoch.
    fn handoff(&mut self, change: Reassignment<String>, epoch: &mut impl Epoch) -> Handoff {
        let now = if !change.acquired.is_empty() {
            epoch.advance(GAIN_STEPS)
        } else if !change.released.is_empty() {
            epoch.advance(LOSS_STEPS)
        } else {
            epoch.current()
        };
        Handoff {
            acquired: change.acquired,
            released: change.released,
            token: self.token(now),
        }
    }
}

/// Shortest wait between a membership change and the placement it causes, in both drivers:
/// changes that arrive together (a join storm) are placed once.
pub const PLACEMENT_DELAY: Duration = Duration::from_millis(20);

/// How far a change that gains a task advances the epoch (see [`LocalTasks`]'s rule).
pub const GAIN_STEPS: u64 = 2;
/// How far a change that only loses tasks advances the epoch.
pub const LOSS_STEPS: u64 = 1;

/// Where a node's placement epoch lives: the protocol core, which gossips it.
pub trait Epoch {
    /// The epoch now.
    fn current(&self) -> u64;
    /// Advances `steps` past everything heard and returns the new epoch.
    fn advance(&mut self, steps: u64) -> u64;
}

impl Epoch for Swim {
    fn current(&self) -> u64 {
        self.epoch()
    }
    fn advance(&mut self, steps: u64) -> u64 {
        self.advance_epoch(steps)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::wire::State;
    use crate::wire::codec::encode_tags;

    fn member(name: &str, state: State, tags: &[(&str, &str)]) -> Member {
        let tags: BTreeMap<String, String> = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Member {
            name: name.into(),
            addr: "127.0.0.1:1".parse().unwrap(),
            run: 1,
            incarnation: 0,
            state,
            meta: encode_tags(&tags),
        }
    }

    #[test]
    fn only_live_matching_members_own_work_weighted_by_tag() {
        let members = [
            member("a", State::Alive, &[("role", "worker"), ("weight", "200")]),
            member("b", State::Suspect, &[("role", "worker")]),
            member("c", State::Dead, &[("role", "worker")]),
            member("d", State::Left, &[("role", "worker")]),
            member("e", State::Alive, &[("role", "api")]),
            member("f", State::Alive, &[("role", "worker"), ("weight", "junk")]),
        ];
        let cfg = PlacementConfig {
            filter: Some(("role".into(), "worker".into())),
            ..PlacementConfig::default()
        };
        let got = eligible(&cfg, &members);
        let want = [("a", 200), ("b", 100), ("f", 100)];
        assert_eq!(got, want.map(|(n, w)| (n.to_string(), w)));
        assert_eq!(eligible(&PlacementConfig::default(), &members).len(), 4);
    }

    /// An epoch held by the test, standing in for the core's.
    struct Clock(u64);

    impl Epoch for Clock {
        fn current(&self) -> u64 {
            self.0
        }
        fn advance(&mut self, steps: u64) -> u64 {
            self.0 += steps;
            self.0
        }
    }

    #[test]
    fn every_gain_or_loss_and_only_those_advance_the_epoch() {
        let mut p = LocalTasks::new("a", 7, PlacementConfig::default());
        let mut epoch = Clock(100);
        let mut view = vec![
            member("a", State::Alive, &[]),
            member("b", State::Alive, &[]),
        ];
        let alone = p.update_with(&view[..1], &mut epoch).unwrap();
        assert!(alone.is_empty(), "no task registered yet");
        assert_eq!(alone.token, FencingToken { epoch: 100, run: 7 });
        let added = p.add((0..100).map(|i| format!("t{i}")), &mut epoch);
        assert_eq!(added.acquired.len(), 100);
        assert_eq!(
            added.token,
            FencingToken { epoch: 102, run: 7 },
            "a gain: two"
        );
        let shared = p.update_with(&view, &mut epoch).unwrap();
        assert!(!shared.released.is_empty() && shared.acquired.is_empty());
        assert_eq!(
            shared.token.epoch, 103,
            "a loss advances the epoch too, by one"
        );
        view[1].incarnation = 5;
        assert!(
            p.update_with(&view, &mut epoch).is_none(),
            "an incarnation bump moves nothing"
        );
        view[1].state = State::Suspect;
        assert!(
            p.update_with(&view, &mut epoch).is_none(),
            "a suspect keeps its tasks"
        );
        view[1].state = State::Dead;
        let back = p.update_with(&view, &mut epoch).unwrap();
        assert_eq!(
            back.acquired, shared.released,
            "exactly b's tasks come back"
        );
        assert_eq!(back.token.epoch, 105);
        assert_eq!(p.owned(105).count(), 100, "the survivor owns everything");
        assert!(p.owned(105).all(|t| t.token == back.token));
        let removed = p.remove(&["t0".to_owned(), "nope".to_owned()], &mut epoch);
        assert_eq!(removed.released, ["t0"]);
        assert_eq!(removed.token.epoch, 106);
        let unknown = p.remove(&["nope".to_owned()], &mut epoch);
        assert!(unknown.is_empty());
        assert_eq!(unknown.token.epoch, 106, "no change, no advance");
    }

    #[test]
    fn huge_meshes_shrink_vnodes_instead_of_failing() {
        let eligible: Vec<(String, u32)> = (0..20_000).map(|i| (format!("n{i}"), 100)).collect();
        let ring = build_ring(&PlacementConfig::default(), &eligible);
        assert_eq!(ring.len(), 20_000);
        assert!(ring.vnode_count() as u64 <= MAX_POINTS);
    }
}
