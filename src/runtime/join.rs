//! Counting a join's answers truthfully: only a seed that sent a state it could read joined
//! this node to anything.

use tokio::sync::oneshot;

/// How one seed answered a join's full-state exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeedAnswer {
    /// It sent a state that opened and decoded: this node now knows its members.
    State,
    /// It was reached but sent nothing usable: it closed without a reply (it could not open
    /// the request: another key or cluster label), or its reply did not open or decode here.
    Unreadable,
    /// It could not be reached (refused, timed out, hung up mid-exchange).
    Unreachable,
}

/// Waits for every seed's answer and returns how many sent a state. When some were reached
/// but none of them sent a readable state, says what the likely cause is: a keyed mesh
/// closes the connection on a request it cannot open, which looks like an answer but is not.
pub(crate) async fn tally(pending: Vec<oneshot::Receiver<SeedAnswer>>) -> usize {
    let mut states = 0;
    let mut unreadable = 0;
    for rx in pending {
        match rx.await.unwrap_or(SeedAnswer::Unreachable) {
            SeedAnswer::State => states += 1,
            SeedAnswer::Unreadable => unreadable += 1,
            SeedAnswer::Unreachable => {}
        }
    }
    if states == 0 && unreadable > 0 {
        tracing::warn!(
            seeds = unreadable,
            "seeds were reached but sent no state this node could read: wrong key or cluster label?"
        );
    }
    states
}
