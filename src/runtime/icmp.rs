//! ICMP port unreachable on the gossip socket: crash evidence for datagram probes (Linux).
//!
//! A process that exits leaves its host's kernel answering datagrams to its port with ICMP
//! port unreachable. An unconnected UDP socket never hears of it, unless `IP_RECVERR`
//! (`IPV6_RECVERR`) is set: then Linux queues each ICMP error on the socket's error queue,
//! with the destination of the datagram that drew it as the message's address, and the next
//! receive or send on the socket fails once with `ConnectionRefused`. The driver then
//! [`drain`]s the queue and reports every refused destination to the core as
//! [`Reach::Refused`](crate::wire::Reach::Refused). Elsewhere this module is compiled out;
//! stream connects still give evidence there.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};

use nix::errno::Errno;
use nix::libc;
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};

/// Most error-queue messages read in one [`drain`]: bounds the loop's time on one call; the
/// rest waits for the next error.
const DRAIN_MAX: usize = 256;

/// Asks the kernel to queue ICMP errors on the UDP socket `s`, bound or to be bound to
/// `addr`'s family.
pub(crate) fn enable<S: AsFd>(s: &S, addr: SocketAddr) -> std::io::Result<()> {
    match addr {
        SocketAddr::V4(_) => setsockopt(s, sockopt::Ipv4RecvErr, &true),
        SocketAddr::V6(_) => setsockopt(s, sockopt::Ipv6RecvErr, &true),
    }
    .map_err(std::io::Error::from)
}

/// Reads the socket's error queue without blocking, and returns the destinations that ICMP
/// said nothing listens on (port unreachable: `ECONNREFUSED`), in arrival order. Other
/// errors (host unreachable, message too big, local errors) are logged at debug and dropped.
pub(crate) fn drain<S: AsRawFd>(s: &S) -> Vec<SocketAddr> {
    let fd = s.as_raw_fd();
    let mut refused = Vec::new();
    // Room for one extended error and its offender's address, of either family.
    let mut cmsg = nix::cmsg_space!(libc::sock_extended_err, libc::sockaddr_in6);
    for _ in 0..DRAIN_MAX {
        // The queued datagram's payload is not needed: an empty buffer truncates it.
        let flags = MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT;
        let msg = match recvmsg::<SockaddrStorage>(fd, &mut [], Some(&mut cmsg), flags) {
            Ok(msg) => msg,
            Err(Errno::EAGAIN) => break,
            Err(e) => {
                tracing::debug!(error = %e, "reading the socket's error queue failed");
                break;
            }
        };
        let to = msg.address.as_ref().and_then(socket_addr);
        let Ok(cmsgs) = msg.cmsgs() else {
            tracing::debug!(?to, "an error-queue message with truncated control data");
            continue;
        };
        for c in cmsgs {
            let (ee, icmp) = match c {
                ControlMessageOwned::Ipv4RecvErr(ee, _) => (ee, libc::SO_EE_ORIGIN_ICMP),
                ControlMessageOwned::Ipv6RecvErr(ee, _) => (ee, libc::SO_EE_ORIGIN_ICMP6),
                other => {
                    tracing::debug!(?to, control = ?other, "unexpected error-queue control");
                    continue;
                }
            };
            let port_unreachable =
                ee.ee_origin == icmp && i32::try_from(ee.ee_errno) == Ok(libc::ECONNREFUSED);
            match to {
                Some(to) if port_unreachable => {
                    tracing::debug!(%to, "ICMP port unreachable");
                    refused.push(to);
                }
                _ => tracing::debug!(
                    ?to,
                    origin = ee.ee_origin,
                    errno = ee.ee_errno,
                    icmp_type = ee.ee_type,
                    icmp_code = ee.ee_code,
                    "socket error queued"
                ),
            }
        }
    }
    refused
}

/// The IP address in `a`, a v4-mapped v6 one as v4 (the form the core knows).
fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    let v6 = std::net::SocketAddrV6::from(*a.as_sockaddr_in6()?);
    Some(match v6.ip().to_ipv4_mapped() {
        Some(ip) => SocketAddr::new(ip.into(), v6.port()),
        None => SocketAddr::V6(v6),
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// A datagram from a socket bound as the runtime binds its own, to a port that was bound
    /// and closed, comes back as that port refused.
    #[test]
    #[allow(clippy::disallowed_methods)] // the wait is bounded by a wall-clock deadline
    fn port_unreachable_is_reported_for_its_destination() {
        let closed = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap()
        };
        let s = crate::runtime::net::udp_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        let s: std::net::UdpSocket = s.into();
        s.send_to(b"ping", closed).unwrap();
        let bound = Duration::from_secs(5);
        let start = Instant::now();
        let refused = loop {
            let got = drain(&s);
            if !got.is_empty() {
                break got;
            }
            assert!(
                start.elapsed() < bound,
                "no ICMP port unreachable within {bound:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(refused, vec![closed]);
        // The queue is empty now, and the one pending socket error was the refusal.
        assert!(drain(&s).is_empty());
        let mut buf = [0u8; 16];
        match s.recv_from(&mut buf) {
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::WouldBlock
                ),
                "{e}"
            ),
            Ok(r) => panic!("nothing was sent to this socket, got {r:?}"),
        }
    }
}
