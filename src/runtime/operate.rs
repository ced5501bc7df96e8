//! What an operator asks of a running node besides the everyday API: forcing a failed member
//! out, and whether the loop still runs (for health checks).

use tokio::sync::oneshot;

use super::Mesh;
use super::driver::Command;
use crate::error::Error;
use crate::proto::Member;

impl Mesh {
    /// Marks a dead member left, as serf's `force-leave` does, and gossips it, so no peer keeps
    /// reconnecting to it; with `prune`, this node also forgets it at once (peers do when their
    /// [`Config::dead_retention`](crate::Config::dead_retention) ends). Returns the member's
    /// record after the change. Refused with [`Error::ForceLeave`], changing nothing, for an
    /// unknown name, a live member or this node.
    pub async fn force_leave(&self, name: &str, prune: bool) -> Result<Member, Error> {
        let (done, rx) = oneshot::channel();
        let name = name.to_owned();
        self.command(Command::ForceLeave { name, prune, done })
            .await?;
        rx.await.map_err(|_| Error::Shutdown)?
    }

    /// Whether the run loop is still running: false once it stopped (shut down, left, or
    /// its runtime ended).
    pub fn is_running(&self) -> bool {
        !self.inner.cmds.is_closed()
    }
}
