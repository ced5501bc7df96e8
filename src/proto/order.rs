//! SWIM's probe order (§4.3): a shuffled round robin, so every member is probed once per
//! round and a failed member is found within one round in the worst case. Newcomers are
//! inserted at a random position after the cursor, so they are probed in this round.
//!
//! A member someone else suspects jumps the queue: this node's next probe goes to it. Its
//! own failed probe is then an independent Lifeguard confirmation within about one probe
//! period, instead of whenever the round robin reaches the suspect, so a suspicion that
//! several members share ends at its minimum timeout while a lone accuser's waits the
//! maximum. It costs no extra probe.

use std::collections::VecDeque;

use rand::Rng;
use rand::seq::SliceRandom;

use super::interner::Name;

/// Most members waiting to be probed out of turn; beyond that the round robin reaches them.
const MAX_SOON: usize = 8;

/// Round-robin probe order over member names.
#[derive(Debug, Default)]
pub struct ProbeOrder {
    order: Vec<Name>,
    next: usize,
    soon: VecDeque<Name>,
}

impl ProbeOrder {
    /// Probes `name` before the round robin resumes (once; its turn in the round stays).
    pub fn probe_soon(&mut self, name: &Name) {
        if self.soon.len() < MAX_SOON && !self.soon.contains(name) {
            self.soon.push_back(name.clone());
        }
    }

    /// Inserts a newcomer at a random position not yet visited this round, in O(1): the
    /// member it displaces moves to the end, which keeps the unvisited part a random order.
    pub fn insert(&mut self, rng: &mut impl Rng, name: Name) {
        self.order.push(name);
        let last = self.order.len() - 1;
        let at = rng.random_range(self.next..=last);
        self.order.swap(at, last);
    }

    /// The next name for which `eligible` holds: one waiting to be probed soon, else the
    /// round robin's next, starting a freshly shuffled round built from `members` when the
    /// current one is used up.
    pub fn next(
        &mut self,
        rng: &mut impl Rng,
        members: &[Name],
        eligible: impl Fn(&str) -> bool,
    ) -> Option<Name> {
        while let Some(name) = self.soon.pop_front() {
            if eligible(&name) {
                return Some(name);
            }
        }
        for pass in 0..2 {
            while self.next < self.order.len() {
                let name = &self.order[self.next];
                self.next += 1;
                if eligible(name) {
                    return Some(name.clone());
                }
            }
            if pass == 0 {
                self.order = members.to_vec();
                self.order.shuffle(rng);
                self.next = 0;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use crate::proto::interner::Interner;

    fn names(v: &[&str]) -> Vec<Name> {
        let i = Interner::default();
        v.iter().map(|n| i.name(n)).collect()
    }

    #[test]
    fn every_member_once_per_round() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let owned: Vec<String> = (0..10).map(|i| format!("n{i}")).collect();
        let members = names(&owned.iter().map(String::as_str).collect::<Vec<_>>());
        let mut o = ProbeOrder::default();
        for _round in 0..3 {
            let mut seen: Vec<Name> = (0..10)
                .map(|_| o.next(&mut rng, &members, |_| true).unwrap())
                .collect();
            seen.sort();
            let mut want = members.clone();
            want.sort();
            assert_eq!(seen, want);
        }
        assert_eq!(
            o.next(&mut rng, &[], |_| true),
            None,
            "an empty mesh has no target"
        );
    }

    #[test]
    fn a_member_to_probe_soon_comes_first_once_and_keeps_its_turn() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let members = names(&["n0", "n1", "n2", "n3", "n4", "n5"]);
        let mut o = ProbeOrder::default();
        let first = o.next(&mut rng, &members, |_| true).unwrap();
        let soon = members.iter().find(|m| **m != first).unwrap();
        o.probe_soon(soon);
        o.probe_soon(soon);
        o.probe_soon(&names(&["gone"])[0]);
        let live = |n: &str| n != "gone";
        assert_eq!(o.next(&mut rng, &members, live).as_ref(), Some(soon));
        let rest: Vec<Name> = (0..5)
            .map(|_| o.next(&mut rng, &members, live).unwrap())
            .collect();
        assert!(rest.contains(soon), "its round-robin turn stays");
        assert_eq!(
            rest.iter().filter(|n| *n == soon).count(),
            1,
            "asked twice, probed once"
        );
    }

    #[test]
    fn ineligible_members_are_skipped_and_newcomers_probed_this_round() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let members = names(&["a", "b"]);
        let mut o = ProbeOrder::default();
        let first = o.next(&mut rng, &members, |n| n != "b").unwrap();
        assert_eq!(&*first, "a");
        o.insert(&mut rng, names(&["c"]).remove(0));
        assert_eq!(
            o.next(&mut rng, &members, |n| n != "b").as_deref(),
            Some("c")
        );
    }
}
