//! Work placement for a running mesh: which members may own work, with what weight, and the
//! task table kept in step with the membership view.
//!
//! Ownership is a pure function of the view: the members that are alive or suspect (a stalled
//! node keeps its tasks, so a stall causes no reshuffle), optionally only those whose tags
//! match a filter, each weighted by its `weight` tag. Dead and left members own nothing.
//! Every task a node claims comes with a [`FencingToken`].

mod token;

use std::collections::BTreeMap;

pub use token::{FencingToken, Handoff, OwnedTask};

use crate::proto::{Member, Swim};
use crate::ring::{
    self, LoadPolicy, MAX_POINTS, NORMAL_WEIGHT, Reassignment, Ring, RingConfig, TaskTable,
};
use crate::wire::codec::decode_tags;

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
            let tags = decode_tags(&m.meta).unwrap_or_default();
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

/// The task table of one node, kept in step with its view, and the token of each task it
/// owns.
#[derive(Debug)]
pub struct LocalTasks {
    cfg: PlacementConfig,
    run: u64,
    eligible: Vec<(String, u32)>,
    table: TaskTable<String>,
    tokens: BTreeMap<String, FencingToken>,
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
            tokens: BTreeMap::new(),
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

    /// The tasks this node owns, with their tokens, in key order.
    pub fn owned(&self) -> impl Iterator<Item = OwnedTask> + '_ {
        self.tokens.iter().map(|(key, &token)| OwnedTask {
            key: key.clone(),
            token,
        })
    }

    /// The token this node holds `key` by, if it owns it.
    pub fn token(&self, key: &str) -> Option<FencingToken> {
        self.tokens.get(key).copied()
    }

    /// Follows `swim`'s view: rebuilds the ring if the set that may own work changed, and
    /// claims what this node gained at a newly advanced epoch. `None` when the set is
    /// unchanged.
    pub fn update(&mut self, swim: &mut Swim) -> Option<Handoff> {
        let eligible = eligible(&self.cfg, swim.members());
        self.update_eligible(eligible, || swim.advance_epoch())
    }

    /// [`LocalTasks::update`] for a view held elsewhere: `advance` gives the epoch to claim
    /// at, and is called only when something is gained.
    pub fn update_with<'a>(
        &mut self,
        members: impl IntoIterator<Item = &'a Member>,
        advance: impl FnOnce() -> u64,
    ) -> Option<Handoff> {
        let eligible = eligible(&self.cfg, members);
        self.update_eligible(eligible, advance)
    }

    fn update_eligible(
        &mut self,
        eligible: Vec<(String, u32)>,
        advance: impl FnOnce() -> u64,
    ) -> Option<Handoff> {
        if eligible == self.eligible {
            return None;
        }
        let ring = build_ring(&self.cfg, &eligible);
        self.eligible = eligible;
        let change = self.table.update_ring(&ring);
        Some(self.claim(change, advance))
    }

    /// Registers task keys; those that land here are claimed together at the epoch
    /// `advance` gives (e.g. [`Swim::advance_epoch`]), called only if one does.
    pub fn add(
        &mut self,
        keys: impl IntoIterator<Item = String>,
        advance: impl FnOnce() -> u64,
    ) -> Handoff {
        let change = self.table.insert_all(keys);
        self.claim(change, advance)
    }

    /// Unregisters task keys; the local node releases those it owned.
    pub fn remove(&mut self, keys: &[String]) -> Handoff {
        let mut released = Vec::new();
        for k in keys {
            released.extend(self.table.remove(k).released);
        }
        released.sort();
        self.release(&released);
        Handoff {
            released,
            ..Handoff::default()
        }
    }

    fn release(&mut self, keys: &[String]) {
        for key in keys {
            self.tokens.remove(key);
        }
    }

    /// The one rule for tokens: what is gained is claimed together at one new epoch, what is
    /// released gives its token up, and what is kept keeps its token.
    fn claim(&mut self, change: Reassignment<String>, advance: impl FnOnce() -> u64) -> Handoff {
        self.release(&change.released);
        let token = (!change.acquired.is_empty()).then(|| FencingToken {
            epoch: advance(),
            run: self.run,
        });
        if let Some(token) = token {
            for key in &change.acquired {
                self.tokens.insert(key.clone(), token);
            }
        }
        Handoff {
            acquired: change.acquired,
            released: change.released,
            token,
        }
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

    #[test]
    fn placer_reports_changes_only_when_the_eligible_set_changes() {
        let mut p = LocalTasks::new("a", 7, PlacementConfig::default());
        let mut epoch = 100;
        let mut advance = || {
            epoch += 1;
            epoch
        };
        let mut view = vec![
            member("a", State::Alive, &[]),
            member("b", State::Alive, &[]),
        ];
        p.update_with(&view[..1], &mut advance).unwrap();
        assert_eq!(p.owned().count(), 0, "no task registered yet");
        view[1].incarnation = 1;
        let first = p.update_with(&view, &mut advance).unwrap();
        assert!(first.is_empty() && first.token.is_none());
        let added = p.add((0..100).map(|i| format!("t{i}")), &mut advance);
        assert_eq!(added.token, Some(FencingToken { epoch: 101, run: 7 }));
        view[1].incarnation = 5;
        assert!(
            p.update_with(&view, &mut advance).is_none(),
            "an incarnation bump moves nothing"
        );
        view[1].state = State::Suspect;
        assert!(
            p.update_with(&view, &mut advance).is_none(),
            "a suspect keeps its tasks"
        );
        view[1].state = State::Dead;
        let after = p.update_with(&view, &mut advance).unwrap();
        assert_eq!(after.token, Some(FencingToken { epoch: 102, run: 7 }));
        assert_eq!(p.owned().count(), 100, "the survivor owns everything");
        assert_eq!(added.acquired.len() + after.acquired.len(), 100);
        let kept = &added.acquired[0];
        assert_eq!(
            p.token(kept).map(|t| t.epoch),
            Some(101),
            "kept tasks keep their token"
        );
        let gained = &after.acquired[0];
        assert_eq!(p.token(gained).map(|t| t.epoch), Some(102));
        let removed = p.remove(std::slice::from_ref(gained));
        assert_eq!(removed.released, std::slice::from_ref(gained));
        assert_eq!(p.token(gained), None, "a released task gives its token up");
    }

    #[test]
    fn huge_meshes_shrink_vnodes_instead_of_failing() {
        let eligible: Vec<(String, u32)> = (0..20_000).map(|i| (format!("n{i}"), 100)).collect();
        let ring = build_ring(&PlacementConfig::default(), &eligible);
        assert_eq!(ring.len(), 20_000);
        assert!(ring.vnode_count() as u64 <= MAX_POINTS);
    }
}
