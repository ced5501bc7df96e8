//! Sealing what the core sends and opening what arrives, around the sans-IO core.
//!
//! The core never sees a sealed packet: the loop seals each [`Transmit`](crate::proto::Transmit)
//! payload with the primary key just before it leaves, and opens each datagram and stream
//! payload before handing it to the core. Streams are opened in their connection task, off the
//! loop; the replay check, which needs the per-sender windows, runs in the loop. With an empty
//! keyring packets pass through as they are, and a sealed one fails to open.

use std::borrow::Cow;

use bytes::Bytes;

use crate::wire::codec::Transport;
use crate::wire::seal::{self, Keyring, OpenError, Origin, ReplayGuard, SEAL_MAGIC};

/// Replay windows kept, one per sender and transport (about 200 bytes each, under 1 MiB in
/// all): far more than the peers one node hears from while their windows matter.
const REPLAY_WINDOWS: usize = 4096;

/// A packet as the core will see it, and who sealed it (none for a plain packet).
pub(crate) struct Unsealed<'a> {
    pub packet: Cow<'a, [u8]>,
    pub origin: Option<Origin>,
}

impl Unsealed<'_> {
    /// Moves the packet into a buffer that may cross to the loop.
    pub(crate) fn into_owned(self, arrived: &Bytes) -> (Bytes, Option<Origin>) {
        let packet = match self.packet {
            Cow::Borrowed(_) => arrived.clone(),
            Cow::Owned(v) => v.into(),
        };
        (packet, self.origin)
    }
}

/// Opens `bytes` as they arrived. With no key, plain packets pass and sealed ones fail (there
/// is no key to open them); with keys, only packets sealed with an installed key open.
pub(crate) fn open<'a>(
    ring: &Keyring,
    label: &str,
    transport: Transport,
    bytes: &'a [u8],
) -> Result<Unsealed<'a>, OpenError> {
    if ring.is_empty() && !bytes.starts_with(&SEAL_MAGIC) {
        return Ok(Unsealed {
            packet: Cow::Borrowed(bytes),
            origin: None,
        });
    }
    let opened = seal::open(ring, label, transport, bytes)?;
    Ok(Unsealed {
        packet: Cow::Owned(opened.packet),
        origin: Some(opened.origin),
    })
}

/// The loop's sealing state: this run's sender instance, its counters, and the replay
/// windows of the senders it hears.
pub(crate) struct Sealer {
    instance: u64,
    sent: [u64; 2],
    replay: ReplayGuard,
}

fn index(t: Transport) -> usize {
    match t {
        Transport::Datagram => 0,
        Transport::Stream => 1,
    }
}

impl Sealer {
    /// A new sender instance, drawn from the OS-seeded RNG: a restarted node counts afresh
    /// under a new instance, so its peers' windows for the old one do not refuse it.
    pub(crate) fn new() -> Sealer {
        Sealer {
            instance: rand::random(),
            sent: [0; 2],
            replay: ReplayGuard::new(REPLAY_WINDOWS),
        }
    }

    /// Seals `packet` with the primary key, or returns it as it is with no key.
    pub(crate) fn seal(
        &mut self,
        ring: &Keyring,
        label: &str,
        transport: Transport,
        packet: Bytes,
    ) -> Bytes {
        let Some(key) = ring.primary() else {
            return packet;
        };
        let counter = &mut self.sent[index(transport)];
        *counter += 1;
        let origin = Origin {
            instance: self.instance,
            counter: *counter,
        };
        seal::seal(key, label, transport, origin, rand::random(), &packet).into()
    }

    /// Whether a packet that opened is new: false for a replay. Plain packets carry no
    /// origin and pass.
    pub(crate) fn admit(&mut self, transport: Transport, origin: Option<Origin>) -> bool {
        origin.is_none_or(|o| self.replay.accept(transport, o))
    }
}
