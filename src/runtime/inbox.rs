//! A bounded queue to one application subscriber, shared by messages ([`Mesh::messages`])
//! and user events ([`Mesh::user_events`]): the producer (the run loop, a connection) never
//! waits on it, a full queue or a missing subscriber drops the item and says so, and a new
//! subscription replaces (and ends) the previous one.
//!
//! [`Mesh::messages`]: super::Mesh::messages
//! [`Mesh::user_events`]: super::Mesh::user_events

use std::pin::Pin;
use std::sync::RwLock;
use std::task::{Context, Poll};

use tokio::sync::mpsc::{self, error::TrySendError};

/// One subscription's queue, in arrival order: [`Messages`](super::Messages) and
/// [`UserEvents`](super::UserEvents). Also a [`Stream`](futures_core::Stream) of the same
/// items.
#[derive(Debug)]
pub struct Inbox<T> {
    rx: mpsc::Receiver<T>,
}

impl<T> Inbox<T> {
    /// The next item; `None` once the mesh has shut down or a newer subscription replaced
    /// this one.
    pub async fn recv(&mut self) -> Option<T> {
        self.rx.recv().await
    }

    /// The next item if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

impl<T> futures_core::Stream for Inbox<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.rx.poll_recv(cx)
    }
}

/// What became of an offered item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offered {
    /// In the subscriber's queue.
    Accepted,
    /// Dropped: the queue was full.
    Full,
    /// Dropped: nobody subscribes.
    NoSubscriber,
}

/// The producing side: the current subscription's sender, if any.
pub(crate) struct Slot<T> {
    capacity: usize,
    /// `None` (or a closed sender) while nobody subscribes.
    tx: RwLock<Option<mpsc::Sender<T>>>,
}

impl<T> Slot<T> {
    /// A slot whose subscriptions hold at most `capacity` items (at least 1).
    pub(crate) fn new(capacity: usize) -> Slot<T> {
        Slot {
            capacity: capacity.max(1),
            tx: RwLock::new(None),
        }
    }

    /// A new subscription, replacing (and ending) any previous one.
    pub(crate) fn subscribe(&self) -> Inbox<T> {
        let (tx, rx) = mpsc::channel(self.capacity);
        *self.tx.write().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        Inbox { rx }
    }

    /// Ends the subscription: its reader learns the mesh is gone.
    pub(crate) fn close(&self) {
        *self.tx.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Hands `item` to the subscriber without waiting.
    pub(crate) fn offer(&self, item: T) -> Offered {
        let tx = self.tx.read().unwrap_or_else(|e| e.into_inner()).clone();
        match tx.map(|q| q.try_send(item)) {
            Some(Ok(())) => Offered::Accepted,
            Some(Err(TrySendError::Full(_))) => Offered::Full,
            Some(Err(TrySendError::Closed(_))) | None => Offered::NoSubscriber,
        }
    }
}
