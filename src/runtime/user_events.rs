//! User events at the runtime level (serf's `UserEvent`): [`Mesh::broadcast`] hands an
//! event to the protocol core through the loop's command queue, and the loop hands every
//! event the core delivers (this node's own included) to the application's subscription,
//! a bounded queue that drops and counts when full ([`Mesh::user_events`]). The core does
//! the rest: dissemination, deduplication, bounds (`proto::user_events`). See
//! docs/RUNTIME.md, *User events*.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::Mesh;
use super::driver::Command;
use super::forward;
use super::inbox::{Inbox, Offered, Slot};
use crate::proto::{UserEvent, UserEventError};

/// Default user events waiting for the application before more are dropped.
pub const DEFAULT_USER_EVENT_QUEUE: usize = 1024;

/// The user events this node delivers, in the order the core delivered them: made by
/// [`Mesh::user_events`]. Also a [`Stream`](futures_core::Stream) of the same items.
pub type UserEvents = Inbox<UserEvent>;

/// The delivering side, shared by the loop and the handles.
pub(crate) struct UserEventInbox {
    queue: Slot<UserEvent>,
    /// Events dropped because the queue was full or nobody subscribed.
    pub dropped: AtomicU64,
    /// [`Mesh::max_user_event_len`]: fixed by the node's name, run and datagram size.
    max_len: usize,
}

impl UserEventInbox {
    pub(crate) fn new(capacity: usize, max_len: usize) -> UserEventInbox {
        UserEventInbox {
            queue: Slot::new(capacity),
            dropped: AtomicU64::new(0),
            max_len,
        }
    }

    /// Hands a delivered event to the subscriber without waiting; drops and counts it when
    /// the queue is full or nobody subscribes.
    pub(crate) fn deliver(&self, e: UserEvent) {
        if self.queue.offer(e) != Offered::Accepted {
            forward::bump(&self.dropped);
        }
    }

    /// Ends the subscription: its reader learns the mesh is gone.
    pub(crate) fn close(&self) {
        self.queue.close();
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Mesh {
    /// Broadcasts a user event to every member (serf's `serf event`): `name` (1 to 64
    /// bytes) and `payload`, together at most [`Mesh::max_user_event_len`] bytes. Every
    /// member's [`Mesh::user_events`] delivers it once, this node's own included, within
    /// about the time a membership rumour takes to spread. Returns its sequence number in
    /// this node's run.
    ///
    /// Refused before anything is sent: [`UserEventError::EmptyName`], `NameTooLong`,
    /// `TooLarge`, `QueueFull` (128 events are already waiting to be disseminated), `Left`,
    /// `Shutdown`.
    pub async fn broadcast(
        &self,
        name: impl Into<String>,
        payload: impl Into<Bytes>,
    ) -> Result<u64, UserEventError> {
        let (name, payload) = (name.into(), payload.into());
        let (done, rx) = oneshot::channel();
        let cmd = Command::Broadcast {
            name,
            payload,
            done,
        };
        self.command(cmd)
            .await
            .map_err(|_| UserEventError::Shutdown)?;
        rx.await.map_err(|_| UserEventError::Shutdown)?
    }

    /// Subscribes to the user events this node delivers, replacing (and ending) any earlier
    /// subscription. At most [`MeshBuilder::user_event_queue`](super::MeshBuilder::user_event_queue)
    /// wait; past that, and while nobody subscribes, events are dropped and counted in
    /// `user_events_dropped`, so a slow reader never slows the mesh.
    pub fn user_events(&self) -> UserEvents {
        self.inner.shared.user_events.queue.subscribe()
    }

    /// The most bytes of name and payload together [`Mesh::broadcast`] takes: half the room
    /// a datagram of `max_datagram` bytes (less the seal, with keys) leaves for rumours.
    pub fn max_user_event_len(&self) -> usize {
        self.inner.shared.user_events.max_len
    }
}
