//! Sockets and stream framing: everything that touches the operating system's network.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::error::Error;
use crate::wire::Reach;

/// Requested socket buffer size. The kernel caps it (`net.core.rmem_max`/`wmem_max`).
const SOCKET_BUFFER: usize = 4 << 20;
/// How many times a port-0 bind retries when the UDP port it got is taken for TCP.
const BIND_ATTEMPTS: usize = 8;

/// A UDP socket and a TCP listener on the same address and port.
pub(crate) struct Bound {
    /// Shared with the handles, which send best-effort messages on it (holding it weakly).
    pub udp: Arc<UdpSocket>,
    pub tcp: TcpListener,
    pub addr: SocketAddr,
}

/// Binds UDP, then TCP on the port UDP got. With port 0 the pair is retried a few times,
/// since the kernel picks the UDP port without knowing whether its TCP twin is free.
pub(crate) fn bind(addr: SocketAddr) -> Result<Bound, Error> {
    let fail = |source| Error::Bind { addr, source };
    let mut last = None;
    for _ in 0..BIND_ATTEMPTS {
        let udp = udp_socket(addr).map_err(fail)?;
        let local = udp
            .local_addr()
            .and_then(|a| {
                a.as_socket()
                    .ok_or_else(|| io::Error::other("bound to a non-IP address"))
            })
            .map_err(fail)?;
        match tcp_listener(local) {
            Ok(tcp) => {
                let udp = Arc::new(UdpSocket::from_std(udp.into()).map_err(fail)?);
                let tcp = TcpListener::from_std(tcp.into()).map_err(fail)?;
                return Ok(Bound {
                    udp,
                    tcp,
                    addr: local,
                });
            }
            Err(e) if addr.port() == 0 && e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(fail(e)),
        }
    }
    Err(fail(
        last.unwrap_or_else(|| io::ErrorKind::AddrInUse.into()),
    ))
}

pub(crate) fn udp_socket(addr: SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    // Best effort: without it, a crashed peer's port refusing datagrams goes unheard and
    // only silence (or a refused stream) tells.
    #[cfg(target_os = "linux")]
    if let Err(e) = super::icmp::enable(&s, addr) {
        tracing::debug!(error = %e, "cannot ask for ICMP errors on the UDP socket");
    }
    // Best effort: a smaller buffer only means more loss under bursts.
    if let Err(e) = s.set_recv_buffer_size(SOCKET_BUFFER) {
        tracing::debug!(error = %e, "cannot raise the UDP receive buffer");
    }
    if let Err(e) = s.set_send_buffer_size(SOCKET_BUFFER) {
        tracing::debug!(error = %e, "cannot raise the UDP send buffer");
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s)
}

fn tcp_listener(addr: SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Lets a restarted node rebind while old connections linger in TIME_WAIT; a live
    // listener on the port still makes the bind fail.
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(128)?;
    Ok(s)
}

/// Picks the source address the kernel would use to reach `toward` (or, without it, a
/// documentation address standing for "the default route"). Connecting a UDP socket sends
/// nothing.
pub(crate) fn route_source(bound: SocketAddr, toward: Option<SocketAddr>) -> io::Result<IpAddr> {
    let target = toward.unwrap_or(match bound {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 9),
        SocketAddr::V6(_) => SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            9,
        ),
    });
    let probe = std::net::UdpSocket::bind(SocketAddr::new(bound.ip(), 0))?;
    probe.connect(target)?;
    let ip = probe.local_addr()?.ip();
    if ip.is_unspecified() {
        return Err(io::Error::other("the kernel chose no source address"));
    }
    Ok(ip)
}

/// Writes one frame: a 4-byte big-endian length, then the payload.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    payload: &[u8],
) -> io::Result<()> {
    put_frame(w, payload).await?;
    w.flush().await
}

/// Writes one frame without flushing, for a buffered writer that sends several at once.
pub(crate) async fn put_frame<W: AsyncWrite + Unpin>(w: &mut W, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame longer than 4 GiB"))?;
    w.write_all(&len.to_be_bytes()).await?;
    w.write_all(payload).await
}

/// Reads one frame of at most `max` bytes. `Ok(None)` if the peer closed the stream before
/// a frame began. The length is checked before anything is allocated, and the buffer grows
/// only as bytes actually arrive.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> io::Result<Option<Bytes>> {
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < header.len() {
        let n = r.read(&mut header[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        got += n;
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds max_stream ({max})"),
        ));
    }
    let mut buf = Vec::with_capacity(len.min(64 << 10));
    r.take(len as u64).read_to_end(&mut buf).await?;
    if buf.len() != len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Some(buf.into()))
}

/// Sends one stream request and reads at most one reply, all within `limit`. `reached`
/// learns what the connect said about `to`'s host as soon as it is known, before any reply:
/// [`Reach::HostUp`] once the handshake completes, [`Reach::Refused`] if it was refused. A
/// connect that times out or fails otherwise tells nothing.
pub(crate) async fn exchange(
    to: SocketAddr,
    payload: &[u8],
    max: usize,
    limit: Duration,
    reached: impl FnOnce(Reach),
) -> io::Result<Option<Bytes>> {
    let work = async {
        let connected = TcpStream::connect(to).await;
        match &connected {
            Ok(_) => reached(Reach::HostUp),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => reached(Reach::Refused),
            Err(_) => {}
        }
        let mut s = connected?;
        s.set_nodelay(true)?;
        write_frame(&mut s, payload).await?;
        read_frame(&mut s, max).await
    };
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "stream exchange timed out"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_refuse_oversize() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello").await.unwrap();
        assert_eq!(buf.len(), 9);
        let got = read_frame(&mut buf.as_slice(), 16).await.unwrap().unwrap();
        assert_eq!(&got[..], b"hello");
        let err = read_frame(&mut buf.as_slice(), 4).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // Truncated body and truncated header are errors; nothing at all is a clean end.
        assert!(read_frame(&mut &buf[..6], 16).await.is_err());
        assert!(read_frame(&mut &buf[..2], 16).await.is_err());
        assert!(read_frame(&mut &buf[..0], 16).await.unwrap().is_none());
        // A huge announced length is refused without allocating it.
        let huge = u32::MAX.to_be_bytes();
        assert!(read_frame(&mut &huge[..], 1 << 20).await.is_err());
    }

    /// What `exchange` tells of the connect: a listener's host is up before it replies (it
    /// never does here), a closed port is refused.
    #[tokio::test]
    async fn exchange_reports_the_connect_outcome() {
        let limit = Duration::from_millis(200);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        let mut seen = None;
        let r = exchange(open, b"hi", 16, limit, |r| seen = Some(r)).await;
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert_eq!(seen, Some(Reach::HostUp));

        drop(listener);
        let mut seen = None;
        let r = exchange(open, b"hi", 16, limit, |r| seen = Some(r)).await;
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(seen, Some(Reach::Refused));
    }
}
