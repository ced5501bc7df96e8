//! The encryption envelope: authenticated encryption of whole packets, the keyring, and the
//! replay window. Pure: no I/O, no clock, no randomness (the caller passes the nonce in).
//!
//! A sealed packet wraps one plain packet (see [`codec`](super::codec)):
//!
//! ```text
//! magic "SWRE" | version u8 | key id [4] | nonce [24] | ciphertext | tag [16]
//! ciphertext = XChaCha20-Poly1305(key, nonce, sender instance u64 LE | counter u64 LE | packet)
//! associated data = the header above (magic .. nonce) | transport u8 | cluster label
//! ```
//!
//! Binding the cluster label and the transport into the associated data means a packet sealed
//! for another cluster, or a datagram replayed as a stream payload, fails to open like a forged
//! one. The sender instance is a random id a node draws at start and the counter grows with
//! each packet it seals per transport: after opening, a [`ReplayGuard`] refuses a counter it
//! has seen, or one too old to tell.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::codec::Transport;

/// First bytes of every sealed packet (plain packets start with `SWRG`).
pub const SEAL_MAGIC: [u8; 4] = *b"SWRE";
/// Version of the sealed envelope; peers refuse others.
pub const SEAL_VERSION: u8 = 1;
/// Length of a key, in bytes.
pub const KEY_LEN: usize = 32;
/// Length of the random nonce, in bytes (XChaCha20: large enough to draw at random).
pub const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = SEAL_MAGIC.len() + 1 + 4 + NONCE_LEN;
const ORIGIN_LEN: usize = 16;
/// Bytes sealing adds to a packet: header, sender instance and counter, and the tag.
pub const SEAL_OVERHEAD: usize = HEADER_LEN + ORIGIN_LEN + TAG_LEN;
/// Counters a [`ReplayGuard`] remembers behind the newest one from each sender.
pub const REPLAY_WINDOW: u64 = 1024;
const WINDOW_WORDS: usize = (REPLAY_WINDOW / 64) as usize;

/// Names a key without revealing it: the first 4 bytes of SHA-256 over a fixed prefix and
/// the key, shown as 8 hex digits. Carried in clear in every sealed packet so a receiver tries
/// the one key that can open it, and shown by `swimring keys list`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId([u8; 4]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = KeyError;

    /// Parses the 8 hex digits [`KeyId`] displays as.
    fn from_str(s: &str) -> Result<KeyId, KeyError> {
        let bad = || KeyError::InvalidId(s.chars().take(16).collect());
        if s.len() != 8 || !s.is_ascii() {
            return Err(bad());
        }
        let mut id = [0u8; 4];
        for (i, b) in id.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(KeyId(id))
    }
}

/// A 32-byte cluster key. Its `Debug` shows only its [`KeyId`], so logging a key by mistake
/// does not leak it.
#[derive(Clone)]
pub struct Key {
    bytes: [u8; KEY_LEN],
    id: KeyId,
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.id)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for Key {}

impl Key {
    /// A key from raw bytes. Draw them from a cryptographic RNG (`swimring keygen` does).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Key {
        let digest = Sha256::new()
            .chain_update(b"swimring key id\0")
            .chain_update(bytes)
            .finalize();
        let id = KeyId([digest[0], digest[1], digest[2], digest[3]]);
        Key {
            cipher: XChaCha20Poly1305::new(&bytes.into()),
            bytes,
            id,
        }
    }

    /// A key from standard base64 (surrounding whitespace ignored). The error never repeats
    /// the input, which may be a key.
    pub fn from_base64(text: &str) -> Result<Key, KeyError> {
        let raw = BASE64
            .decode(text.trim())
            .map_err(|_| KeyError::Malformed("not valid base64".into()))?;
        let bytes: [u8; KEY_LEN] = raw.try_into().map_err(|raw: Vec<u8>| {
            KeyError::Malformed(format!("{} bytes, a key is {KEY_LEN}", raw.len()))
        })?;
        Ok(Key::from_bytes(bytes))
    }

    /// The key in standard base64, as key files and `swimring keys install` take it.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.bytes)
    }

    /// The key's public name.
    pub fn id(&self) -> KeyId {
        self.id
    }
}

/// Why a keyring change or a key was refused. A refused change leaves the keyring as it was.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not a base64 32-byte key.
    #[error("invalid key: {0}")]
    Malformed(String),
    /// The text is not a key id (8 hex digits).
    #[error("invalid key id {0:?}: expected 8 hex digits")]
    InvalidId(String),
    /// No installed key has this id.
    #[error("no installed key has id {0}")]
    Unknown(KeyId),
    /// The primary key encrypts everything this node sends: make another key primary first.
    #[error("key {0} is the primary key: use another key first")]
    RemovePrimary(KeyId),
    /// A different key with the same id is installed (a 1 in 4 billion chance per pair):
    /// generate another key.
    #[error("another installed key has the same id {0}: generate a new key")]
    Collision(KeyId),
    /// The node runs without encryption; keys can be given only at start.
    #[error("this node runs without encryption: keys can only be given at start")]
    Plaintext,
}

/// The keys a node holds: the first (primary) seals what it sends; every key opens.
/// An empty keyring means the node sends and accepts plain packets only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keyring {
    keys: Vec<Key>,
}

impl Keyring {
    /// A keyring with `keys[0]` as primary. Duplicates are dropped; two different keys with
    /// one id are refused.
    pub fn new(keys: impl IntoIterator<Item = Key>) -> Result<Keyring, KeyError> {
        let mut ring = Keyring::default();
        for key in keys {
            ring.add(key)?;
        }
        Ok(ring)
    }

    fn add(&mut self, key: Key) -> Result<(), KeyError> {
        match self.get(key.id) {
            Some(k) if *k == key => Ok(()),
            Some(_) => Err(KeyError::Collision(key.id)),
            None => {
                self.keys.push(key);
                Ok(())
            }
        }
    }

    /// Whether the node runs without encryption.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key that seals outgoing packets.
    pub fn primary(&self) -> Option<&Key> {
        self.keys.first()
    }

    /// Ids of every key, the primary first.
    pub fn ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(Key::id).collect()
    }

    /// The installed key with this id.
    pub fn get(&self, id: KeyId) -> Option<&Key> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Adds a key that opens packets (installing one already present does nothing). The
    /// first step of a rotation: install the new key on every node before any uses it.
    pub fn install(&mut self, key: Key) -> Result<(), KeyError> {
        if self.is_empty() {
            return Err(KeyError::Plaintext);
        }
        self.add(key)
    }

    /// Makes an installed key the primary: from now on it seals what this node sends.
    pub fn use_key(&mut self, id: KeyId) -> Result<(), KeyError> {
        let i = self
            .keys
            .iter()
            .position(|k| k.id == id)
            .ok_or(KeyError::Unknown(id))?;
        self.keys[..=i].rotate_right(1);
        Ok(())
    }

    /// Removes a key that is not the primary: packets sealed with it no longer open.
    pub fn remove(&mut self, id: KeyId) -> Result<(), KeyError> {
        match self.keys.iter().position(|k| k.id == id) {
            None => Err(KeyError::Unknown(id)),
            Some(0) => Err(KeyError::RemovePrimary(id)),
            Some(i) => {
                self.keys.remove(i);
                Ok(())
            }
        }
    }
}

/// Who sealed a packet: the sender's random instance id and its counter for that transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// Random id the sending node drew when it started.
    pub instance: u64,
    /// The sender's packet counter for the transport, from 1.
    pub counter: u64,
}

/// A packet that opened: who sealed it, and the plain packet inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// Who sealed it (check it with a [`ReplayGuard`] before use).
    pub origin: Origin,
    /// The plain packet, for [`codec::decode`](super::codec::decode).
    pub packet: Vec<u8>,
}

/// Why a sealed packet did not open. Nothing about the packet can be trusted; drop it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenError {
    /// Shorter than the smallest sealed packet.
    #[error("{0} bytes is too short for a sealed packet")]
    TooShort(usize),
    /// Does not start with the sealed magic: a plain packet, or garbage.
    #[error("not a sealed packet")]
    NotSealed,
    /// A sealed envelope version this build cannot open.
    #[error("unsupported sealed envelope version {0}")]
    UnsupportedVersion(u8),
    /// Sealed with a key this node does not hold.
    #[error("sealed with key {0}, which is not installed")]
    UnknownKey(KeyId),
    /// Authentication failed: forged, corrupted, or sealed for another cluster or transport.
    #[error("authentication failed (wrong key, other cluster, or tampered)")]
    Forged,
}

fn transport_byte(transport: Transport) -> u8 {
    match transport {
        Transport::Datagram => 0,
        Transport::Stream => 1,
    }
}

fn associated_data(header: &[u8], label: &str, transport: Transport) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + 1 + label.len());
    aad.extend_from_slice(header);
    aad.push(transport_byte(transport));
    aad.extend_from_slice(label.as_bytes());
    aad
}

/// Seals `packet` with `key` for the cluster `label` and `transport`. `nonce` must never
/// repeat under one key: draw it from a cryptographic RNG.
pub fn seal(
    key: &Key,
    label: &str,
    transport: Transport,
    origin: Origin,
    nonce: [u8; NONCE_LEN],
    packet: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(packet.len() + SEAL_OVERHEAD);
    out.extend_from_slice(&SEAL_MAGIC);
    out.push(SEAL_VERSION);
    out.extend_from_slice(&key.id.0);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&origin.instance.to_le_bytes());
    out.extend_from_slice(&origin.counter.to_le_bytes());
    out.extend_from_slice(packet);
    let (header, body) = out.split_at_mut(HEADER_LEN);
    let aad = associated_data(header, label, transport);
    let tag = key
        .cipher
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), &aad, body)
        .expect("XChaCha20-Poly1305 seals any packet below 256 GiB");
    out.extend_from_slice(&tag);
    out
}

/// Opens a sealed packet with the key its header names. Cost is one table lookup and one
/// AEAD pass over the bytes; nothing is allocated before the header checks pass.
pub fn open(
    ring: &Keyring,
    label: &str,
    transport: Transport,
    bytes: &[u8],
) -> Result<Opened, OpenError> {
    if bytes.len() < SEAL_MAGIC.len() || bytes[..SEAL_MAGIC.len()] != SEAL_MAGIC {
        return Err(OpenError::NotSealed);
    }
    if bytes.len() < SEAL_OVERHEAD {
        return Err(OpenError::TooShort(bytes.len()));
    }
    if bytes[4] != SEAL_VERSION {
        return Err(OpenError::UnsupportedVersion(bytes[4]));
    }
    let id = KeyId([bytes[5], bytes[6], bytes[7], bytes[8]]);
    let key = ring.get(id).ok_or(OpenError::UnknownKey(id))?;
    let (header, rest) = bytes.split_at(HEADER_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    let aad = associated_data(header, label, transport);
    let mut plain = ciphertext.to_vec();
    key.cipher
        .decrypt_in_place_detached(
            XNonce::from_slice(&header[9..]),
            &aad,
            &mut plain,
            Tag::from_slice(tag),
        )
        .map_err(|_| OpenError::Forged)?;
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&plain[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let origin = Origin {
        instance: word(0),
        counter: word(8),
    };
    plain.drain(..ORIGIN_LEN);
    Ok(Opened {
        origin,
        packet: plain,
    })
}

/// Counters seen from one sender on one transport: the newest, and a bitmap of the
/// [`REPLAY_WINDOW`] before it (RFC 6479's ring of bits, indexed by counter).
#[derive(Debug, Clone)]
struct Window {
    top: u64,
    bits: [u64; WINDOW_WORDS],
    last_used: u64,
}

impl Window {
    fn bit(counter: u64) -> (usize, u64) {
        let i = counter % REPLAY_WINDOW;
        ((i / 64) as usize, 1 << (i % 64))
    }

    /// Records `counter`; false if it was seen or is too old to tell.
    fn accept(&mut self, counter: u64) -> bool {
        if counter > self.top {
            if counter - self.top >= REPLAY_WINDOW {
                self.bits = [0; WINDOW_WORDS];
            } else {
                for c in self.top + 1..counter {
                    let (w, m) = Window::bit(c);
                    self.bits[w] &= !m;
                }
            }
            self.top = counter;
        } else if self.top - counter >= REPLAY_WINDOW {
            return false;
        } else {
            let (w, m) = Window::bit(counter);
            if self.bits[w] & m != 0 {
                return false;
            }
        }
        let (w, m) = Window::bit(counter);
        self.bits[w] |= m;
        true
    }
}

/// Refuses packets already seen: a sliding window per (sender instance, transport), in a
/// table of at most `capacity` windows that forgets the least recently used one when full.
/// Memory is fixed whatever arrives; only packets that opened (so came from a key holder)
/// reach it.
#[derive(Debug, Clone)]
pub struct ReplayGuard {
    windows: BTreeMap<(u64, u8), Window>,
    /// Sender keys by the tick they were last heard from: the oldest is evicted first.
    by_age: BTreeMap<u64, (u64, u8)>,
    tick: u64,
    capacity: usize,
}

impl ReplayGuard {
    /// A guard holding at most `capacity` windows (at least 1), one per sender and transport,
    /// about 200 bytes each.
    pub fn new(capacity: usize) -> ReplayGuard {
        ReplayGuard {
            windows: BTreeMap::new(),
            by_age: BTreeMap::new(),
            tick: 0,
            capacity: capacity.max(1),
        }
    }

    /// Windows held now.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    /// Whether no window is held.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// Records a packet's origin; false if that counter was already seen from that sender on
    /// that transport, or is more than [`REPLAY_WINDOW`] behind its newest.
    pub fn accept(&mut self, transport: Transport, origin: Origin) -> bool {
        let key = (origin.instance, transport_byte(transport));
        self.tick += 1;
        if !self.windows.contains_key(&key)
            && self.windows.len() >= self.capacity
            && let Some((_, oldest)) = self.by_age.pop_first()
        {
            self.windows.remove(&oldest);
        }
        let window = self.windows.entry(key).or_insert(Window {
            top: 0,
            bits: [0; WINDOW_WORDS],
            last_used: 0,
        });
        if !window.accept(origin.counter) {
            return false;
        }
        self.by_age.remove(&window.last_used);
        window.last_used = self.tick;
        self.by_age.insert(self.tick, key);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Key {
        Key::from_bytes([b; KEY_LEN])
    }

    fn origin(counter: u64) -> Origin {
        Origin {
            instance: 42,
            counter,
        }
    }

    fn sealed(k: &Key, label: &str, t: Transport) -> Vec<u8> {
        seal(k, label, t, origin(7), [9; NONCE_LEN], b"SWRG packet")
    }

    #[test]
    fn sealed_packets_open_with_the_named_key_and_nothing_else() {
        let (a, b) = (key(1), key(2));
        let ring = Keyring::new([b.clone(), a.clone()]).unwrap();
        let bytes = sealed(&a, "blue", Transport::Datagram);
        assert_eq!(bytes.len(), b"SWRG packet".len() + SEAL_OVERHEAD);
        let opened = open(&ring, "blue", Transport::Datagram, &bytes).unwrap();
        assert_eq!(opened.origin, origin(7));
        assert_eq!(opened.packet, b"SWRG packet");

        let only_b = Keyring::new([b]).unwrap();
        assert_eq!(
            open(&only_b, "blue", Transport::Datagram, &bytes),
            Err(OpenError::UnknownKey(a.id()))
        );
        // Another cluster, or the other transport: the associated data differs.
        for (label, t) in [("green", Transport::Datagram), ("blue", Transport::Stream)] {
            assert_eq!(open(&ring, label, t, &bytes), Err(OpenError::Forged));
        }
    }

    #[test]
    fn any_flipped_bit_is_refused() {
        let k = key(3);
        let ring = Keyring::new([k.clone()]).unwrap();
        let bytes = sealed(&k, "", Transport::Stream);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(
                open(&ring, "", Transport::Stream, &bad).is_err(),
                "byte {i}"
            );
        }
        for n in 0..SEAL_OVERHEAD {
            assert!(open(&ring, "", Transport::Stream, &bytes[..n]).is_err());
        }
        assert_eq!(
            open(&ring, "", Transport::Stream, b"SWRG\x01plain"),
            Err(OpenError::NotSealed)
        );
    }

    #[test]
    fn keys_round_trip_through_base64_and_never_show_in_debug() {
        let k = key(4);
        let text = k.to_base64();
        assert_eq!(Key::from_base64(&format!(" {text}\n")).unwrap(), k);
        assert!(!format!("{k:?}").contains(&text));
        assert_eq!(k.id().to_string().parse::<KeyId>().unwrap(), k.id());
        let short = BASE64.encode([1u8; 16]);
        let err = Key::from_base64(&short).unwrap_err();
        assert!(err.to_string().contains("16 bytes"), "{err}");
        assert!(!err.to_string().contains(&short));
        assert!(Key::from_base64("!!").is_err());
        for bad in ["", "1234567", "123456789", "zzzzzzzz", "ééééé"] {
            assert!(bad.parse::<KeyId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn rotation_installs_uses_and_removes_but_never_the_primary() {
        let (a, b) = (key(5), key(6));
        assert_eq!(
            Keyring::default().install(a.clone()),
            Err(KeyError::Plaintext)
        );
        let mut ring = Keyring::new([a.clone(), a.clone()]).unwrap();
        assert_eq!(ring.ids(), [a.id()]);
        ring.install(b.clone()).unwrap();
        ring.install(b.clone()).unwrap();
        assert_eq!(ring.ids(), [a.id(), b.id()]);
        assert_eq!(ring.remove(a.id()), Err(KeyError::RemovePrimary(a.id())));
        ring.use_key(b.id()).unwrap();
        assert_eq!(ring.primary(), Some(&b));
        ring.remove(a.id()).unwrap();
        assert_eq!(ring.ids(), [b.id()]);
        assert_eq!(ring.use_key(a.id()), Err(KeyError::Unknown(a.id())));
        assert_eq!(ring.remove(a.id()), Err(KeyError::Unknown(a.id())));
    }

    #[test]
    fn the_replay_window_refuses_repeats_and_the_too_old() {
        let mut g = ReplayGuard::new(8);
        let t = Transport::Datagram;
        assert!(g.accept(t, origin(5)));
        assert!(!g.accept(t, origin(5)));
        assert!(g.accept(t, origin(3)), "late but unseen");
        assert!(!g.accept(t, origin(3)));
        assert!(g.accept(Transport::Stream, origin(5)), "per transport");
        assert!(g.accept(t, origin(5 + REPLAY_WINDOW)));
        assert!(!g.accept(t, origin(5)), "fell out of the window");
        assert!(g.accept(t, origin(REPLAY_WINDOW)), "unseen, in window");
        assert!(g.accept(t, origin(10_000)));
        assert!(g.accept(t, origin(9_999)));
        assert!(!g.accept(t, origin(9_999)));
    }

    #[test]
    fn the_replay_table_is_bounded_and_forgets_the_least_recent() {
        let mut g = ReplayGuard::new(4);
        let t = Transport::Datagram;
        let from = |instance, counter| Origin { instance, counter };
        for i in 0..4 {
            assert!(g.accept(t, from(i, 1)));
        }
        assert!(g.accept(t, from(0, 2)), "0 is now the most recent");
        for i in 10..1000 {
            assert!(g.accept(t, from(i, 1)));
            assert!(g.len() <= 4);
        }
        assert!(g.accept(t, from(1, 1)), "1 was forgotten");
        assert!(!g.accept(t, from(999, 1)), "999 is remembered");
    }
}
