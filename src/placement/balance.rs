//! How evenly the work is spread: what `swimring tasks --all` shows and the demo explains.
//!
//! Consistent hashing gives each member a share of the hash circle close to its weight's
//! share, but tasks are counted in whole numbers: with few tasks per member the counting
//! noise dominates (30 tasks on 5 members can land 4/4/9/9/4 although every arc is within a
//! few percent of a fifth). Bounded loads cap each member at `ceil(c × fair share)`.

use serde::{Deserialize, Serialize};

/// One member that may own work: its weight and how many registered tasks it owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberLoad {
    /// The member's name.
    pub name: String,
    /// Its `weight` tag (100 when absent).
    pub weight: u32,
    /// Registered tasks it owns.
    pub tasks: usize,
}

/// Every member that may own work, sorted by name, with the registered task count.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Balance {
    /// The members, by name.
    pub members: Vec<MemberLoad>,
    /// Registered tasks, owned or not.
    pub tasks: usize,
}

impl Balance {
    /// The tasks `m` would own if every member owned exactly its weight's share.
    pub fn fair(&self, m: &MemberLoad) -> f64 {
        let total: u64 = self.members.iter().map(|m| u64::from(m.weight)).sum();
        if total == 0 {
            return 0.0;
        }
        self.tasks as f64 * f64::from(m.weight) / total as f64
    }

    /// The busiest member's tasks over its fair share: 1.0 is perfect balance. Members of
    /// weight 0 own nothing and are left out; 0.0 when no task is placed.
    pub fn peak_mean(&self) -> f64 {
        self.members
            .iter()
            .map(|m| (m, self.fair(m)))
            .filter(|&(_, fair)| fair > 0.0)
            .map(|(m, fair)| m.tasks as f64 / fair)
            .fold(0.0, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(name: &str, weight: u32, tasks: usize) -> MemberLoad {
        MemberLoad {
            name: name.into(),
            weight,
            tasks,
        }
    }

    #[test]
    fn peak_mean_weighs_each_member_by_its_fair_share() {
        let b = Balance {
            members: vec![load("a", 100, 4), load("b", 200, 8), load("c", 0, 0)],
            tasks: 12,
        };
        assert_eq!(b.fair(&b.members[1]), 8.0);
        assert_eq!(b.peak_mean(), 1.0, "each owns exactly its weight's share");
        let skewed = Balance {
            members: vec![load("a", 100, 9), load("b", 100, 3)],
            tasks: 12,
        };
        assert_eq!(skewed.peak_mean(), 1.5);
        assert_eq!(Balance::default().peak_mean(), 0.0);
    }
}
