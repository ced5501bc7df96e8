//! Rumours waiting to be piggybacked: each is sent a limited number of times, least-sent
//! first (newest first among equals), and a newer rumour about a member replaces the older.
//! User events wait in a queue of their own of the same kind, keyed by arrival, so that none
//! replaces another.

use std::borrow::Borrow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use super::interner::Name;
use crate::wire::codec::Frame;

type Key = (u32, Reverse<u64>);

/// Queue of encoded rumours, keyed by what they are about (`K`): the member, for membership
/// rumours.
#[derive(Debug)]
pub struct Broadcasts<K = Name> {
    queue: BTreeMap<Key, (K, Frame)>,
    by_name: HashMap<K, Key>,
    next_id: u64,
}

impl<K> Default for Broadcasts<K> {
    fn default() -> Self {
        Broadcasts {
            queue: BTreeMap::new(),
            by_name: HashMap::new(),
            next_id: 0,
        }
    }
}

impl<K: Clone + Eq + Hash> Broadcasts<K> {
    /// Queues a rumour about `name`, replacing any older one about the same member.
    pub fn push(&mut self, name: K, frame: Frame) {
        if let Some(old) = self.by_name.remove(&name) {
            self.queue.remove(&old);
        }
        let key = (0, Reverse(self.next_id));
        self.next_id += 1;
        self.by_name.insert(name.clone(), key);
        self.queue.insert(key, (name, frame));
    }

    /// Rumours waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no rumour is waiting.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether a rumour about `name` is still waiting to be sent.
    pub fn contains<Q: Hash + Eq + ?Sized>(&self, name: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.by_name.contains_key(name)
    }

    /// Drops the rumour sent most often (the oldest among equals): the one whose remaining
    /// sends matter least, as it has already travelled furthest. Whether one was waiting.
    pub fn evict_most_sent(&mut self) -> bool {
        let Some((_, (name, _))) = self.queue.pop_last() else {
            return false;
        };
        self.by_name.remove(&name);
        true
    }

    /// Takes rumours whose frames fit in `budget` bytes, counting one transmission for each
    /// and dropping those sent `limit` times.
    pub fn take(&mut self, budget: usize, limit: u32) -> Vec<Frame> {
        self.take_more(budget, limit, &mut Taken::default())
    }

    /// Like [`Broadcasts::take`], for a datagram that already holds the rumours in `taken`
    /// (from earlier calls for the same datagram): those are skipped, as a rumour sent twice
    /// in one datagram would spend a retransmission for nothing, and what is taken now is
    /// added to `taken`.
    pub fn take_more(&mut self, mut budget: usize, limit: u32, taken: &mut Taken) -> Vec<Frame> {
        const SMALLEST_FRAME: usize = 16;
        // A long queue is not scanned end to end for a frame small enough to fill the last
        // few bytes: after this many misfits in a row the packet is full enough.
        const MAX_MISFITS: usize = 8;
        let mut picked = Vec::new();
        let mut misfits = 0;
        for (key, (_, frame)) in &self.queue {
            if budget < SMALLEST_FRAME || misfits >= MAX_MISFITS {
                break;
            }
            if taken.0.contains(&key.1) {
                continue;
            }
            let len = frame.encoded_len();
            if len <= budget {
                budget -= len;
                picked.push(*key);
                misfits = 0;
            } else {
                misfits += 1;
            }
        }
        let mut frames = Vec::with_capacity(picked.len());
        taken.0.extend(picked.iter().map(|k| k.1));
        for key in picked {
            let (name, frame) = self.queue.remove(&key).expect("picked from the queue");
            frames.push(frame.clone());
            let sent = key.0 + 1;
            if sent >= limit {
                self.by_name.remove(&name);
            } else {
                let next = (sent, key.1);
                self.by_name.insert(name.clone(), next);
                self.queue.insert(next, (name, frame));
            }
        }
        frames
    }
}

/// The rumours one datagram already holds (see [`Broadcasts::take_more`]): a handful.
#[derive(Debug, Default)]
pub struct Taken(Vec<Reverse<u64>>);

/// How many times each rumour is sent in a mesh of `n` members.
pub fn retransmit_limit(mult: u32, n: usize) -> u32 {
    mult * ((n as f64 + 1.0).log10().ceil() as u32).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::interner::Interner;
    use crate::wire::codec::encode_frame;
    use crate::wire::{Ack, Message};

    fn frame(seq: u32) -> Frame {
        encode_frame(&Message::Ack(Ack { seq }))
    }

    #[test]
    fn each_rumour_is_sent_exactly_limit_times() {
        let names = Interner::default();
        let mut b = Broadcasts::default();
        b.push(names.name("a"), frame(1));
        b.push(names.name("b"), frame(2));
        let mut sent = 0;
        while !b.is_empty() {
            sent += b.take(1400, 3).len();
        }
        assert_eq!(sent, 6);
    }

    #[test]
    fn newer_rumour_replaces_older_and_least_sent_goes_first() {
        let names = Interner::default();
        let mut b = Broadcasts::default();
        b.push(names.name("a"), frame(1));
        assert_eq!(b.take(1400, 10), vec![frame(1)]);
        b.push(names.name("b"), frame(2));
        let one = frame(1).encoded_len();
        assert_eq!(b.take(one.max(16), 10), vec![frame(2)], "b was sent less");
        b.push(names.name("a"), frame(3));
        assert_eq!(b.len(), 2);
        let all = b.take(1400, 10);
        assert!(all.contains(&frame(3)) && !all.contains(&frame(1)));
    }

    #[test]
    fn retransmit_limit_grows_with_log_n() {
        assert_eq!(retransmit_limit(4, 1), 4);
        assert_eq!(retransmit_limit(4, 9), 4);
        assert_eq!(retransmit_limit(4, 10), 8);
        assert_eq!(retransmit_limit(4, 1000), 16);
    }
}
