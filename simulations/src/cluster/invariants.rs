//! The invariants checked on every node while checking is on ([`Cluster::set_checking`]).

use swimring::proto::Event;
use swimring::wire::State;

use super::{Cluster, NodeId};

impl Cluster {
    /// Records a broken invariant (the first 16, stamped with virtual time).
    pub(super) fn violation(&mut self, what: String) {
        if self.violations.len() < 16 {
            let t = self.now as f64 / 1e9;
            self.violations.push(format!("t={t:.3}s: {what}"));
        }
    }

    /// Node `id` never holds itself dead or suspect, and its own (run, incarnation) never
    /// goes back.
    pub(super) fn check_self(&mut self, id: NodeId) {
        let me = self.nodes[id].swim.local();
        let cur = (me.run, me.incarnation);
        let state = me.state;
        let name = me.name.clone();
        if matches!(state, State::Dead | State::Suspect) {
            self.violation(format!("{name} holds itself {state}"));
        }
        if cur < self.nodes[id].own {
            let old = self.nodes[id].own;
            self.violation(format!(
                "{name}'s own incarnation went back from {old:?} to {cur:?}"
            ));
        }
        self.nodes[id].own = self.nodes[id].own.max(cur);
    }

    /// Events are never about the observer itself, and what an observer saw of a member's
    /// (run, incarnation) never goes back.
    pub(super) fn check_event(&mut self, id: NodeId, event: &Event) {
        let Some(m) = event.member() else { return };
        if m.name == self.nodes[id].swim.local().name {
            self.violation(format!(
                "{} reported an event about itself: {}",
                m.name,
                event.kind()
            ));
            return;
        }
        let Some(&slot) = self.metrics.slot_of.get(&m.name) else {
            return;
        };
        let cur = (m.run, m.incarnation);
        let key = (id as u32, slot);
        if let Some(&old) = self.seen.get(&key)
            && cur < old
        {
            let obs = self.nodes[id].swim.local().name.clone();
            self.violation(format!(
                "{obs} saw {}'s (run, incarnation) go back from {old:?} to {cur:?} ({})",
                m.name,
                event.kind()
            ));
        }
        let e = self.seen.entry(key).or_insert(cur);
        *e = (*e).max(cur);
    }
}
