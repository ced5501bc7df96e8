//! Errors raised when a ring or a placement policy is built from bad input.

use thiserror::Error;

/// Why a [`Ring`](crate::ring::Ring) or a [`BoundedLoad`](crate::ring::BoundedLoad) could not
/// be built.
///
/// Placement is computed independently on every node from the same inputs, so bad input is
/// rejected up front rather than "repaired": two nodes silently repairing it differently would
/// disagree on who owns what. The enum is `#[non_exhaustive]` so new validations can be added
/// without breaking callers.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum RingError {
    /// The configured virtual-node count is outside the supported range. Zero would give every
    /// member an empty share; very large counts only cost memory and rebuild time.
    #[error("vnodes_per_member must be in 1..={max}, got {got}")]
    InvalidVnodes {
        /// The value that was asked for.
        got: u32,
        /// The largest supported value.
        max: u32,
    },
    /// The same member name was given twice. Names identify members, so a duplicate is
    /// ambiguous (which weight wins?) and is refused instead of guessed.
    #[error("member {name:?} appears more than once")]
    DuplicateMember {
        /// The duplicated name (the first in name order, so the error is deterministic).
        name: String,
    },
    /// A member's weight is above [`MAX_WEIGHT`](crate::ring::MAX_WEIGHT); such weights would
    /// make one member's virtual nodes dominate memory and rebuild time.
    #[error("member {name:?} has weight {weight}, above the maximum {max}")]
    WeightTooLarge {
        /// The member with the excessive weight.
        name: String,
        /// Its weight.
        weight: u32,
        /// The largest supported weight.
        max: u32,
    },
    /// The ring would hold more virtual nodes than [`MAX_POINTS`](crate::ring::MAX_POINTS),
    /// which bounds its memory (12 bytes a point) and rebuild time.
    #[error("ring would need {points} virtual nodes, above the maximum {max}")]
    TooManyPoints {
        /// Virtual nodes the members and weights would need.
        points: u64,
        /// The largest supported total.
        max: u64,
    },
    /// More members than [`MAX_MEMBERS`](crate::ring::MAX_MEMBERS), the most the ring's
    /// compact member indices are meant to address.
    #[error("ring would have {members} members, above the maximum {max}")]
    TooManyMembers {
        /// Members given.
        members: usize,
        /// The largest supported count.
        max: usize,
    },
    /// The bounded-load factor `c` is not a finite number at least
    /// [`MIN_LOAD_FACTOR`](crate::ring::MIN_LOAD_FACTOR). Below that, a single membership change
    /// cascades into many moves (the expected movement grows like 1/(c-1)²).
    #[error("bounded-load factor c must be finite and >= {min}, got {got}")]
    InvalidLoadFactor {
        /// The factor that was asked for.
        got: f64,
        /// The smallest accepted factor.
        min: f64,
    },
}
