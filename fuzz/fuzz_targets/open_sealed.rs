//! Any bytes as a sealed packet: opening must fail cleanly (or, for the checked-in seeds
//! sealed with the fuzz key, open), and the replay window must take any origin.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swimring::wire::codec::Transport;
use swimring::wire::seal::{self, Key, Keyring, Origin, ReplayGuard};

fuzz_target!(|data: &[u8]| {
    // The corpus seeds are sealed with this key (32 bytes of 0x42) and label "fuzz".
    let ring = Keyring::new([Key::from_bytes([0x42; 32])]).unwrap();
    for t in [Transport::Datagram, Transport::Stream] {
        if let Ok(opened) = seal::open(&ring, "fuzz", t, data) {
            let mut guard = ReplayGuard::new(2);
            assert!(guard.accept(t, opened.origin));
            assert!(!guard.accept(t, opened.origin));
        }
    }
    // The window on arbitrary origins: bounded, never a panic.
    let mut guard = ReplayGuard::new(4);
    for chunk in data.chunks_exact(9) {
        let mut c = [0u8; 8];
        c.copy_from_slice(&chunk[1..]);
        let origin = Origin {
            instance: u64::from(chunk[0] % 8),
            counter: u64::from_le_bytes(c),
        };
        guard.accept(Transport::Datagram, origin);
        assert!(guard.len() <= 4);
    }
});
