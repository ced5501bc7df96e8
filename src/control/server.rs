//! Serving the control endpoint.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::mpsc;

use super::endpoint::{bind_unix, trusted_uid};
use super::{ControlError, Endpoint, Envelope, MAX_LINE, Request, Response};

/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers control requests; the agent implements it over its `Mesh`.
pub trait Handler: Send + Sync + 'static {
    /// Serves one request.
    fn handle(&self, req: Request) -> impl Future<Output = Response> + Send;

    /// Answers a streaming request with many lines: `Some` receiver whose answers are sent
    /// one per line until it closes or the client hangs up. `None` (the default) serves the
    /// request with [`Handler::handle`].
    fn stream(&self, _req: &Request) -> Option<mpsc::Receiver<Response>> {
        None
    }
}

/// Who may use a TCP endpoint. (A Unix socket serves its own user and root only.)
#[derive(Clone, Default)]
pub struct Auth {
    /// SHA-256 of the token, so comparing takes the same time whatever the guess.
    token: Option<[u8; 32]>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("token", &self.token.map(|_| "<redacted>"))
            .finish()
    }
}

impl Auth {
    /// No token: anyone who can connect may ask (right for loopback and Unix sockets).
    pub fn none() -> Auth {
        Auth::default()
    }

    /// Requests over TCP must carry `token`.
    pub fn token(token: &str) -> Auth {
        Auth {
            token: Some(Sha256::digest(token.as_bytes()).into()),
        }
    }

    /// Whether a token is required.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    fn admits(&self, given: Option<&str>) -> bool {
        match (&self.token, given) {
            (None, _) => true,
            (Some(want), Some(g)) => <[u8; 32]>::from(Sha256::digest(g.as_bytes())) == *want,
            (Some(_), None) => false,
        }
    }
}

/// A bound control endpoint.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// A Unix domain socket.
    Unix(UnixListener),
}

impl From<TcpListener> for Listener {
    fn from(l: TcpListener) -> Listener {
        Listener::Tcp(l)
    }
}

impl Listener {
    /// Binds `endpoint`: a Unix socket private to this user (replacing a stale one), or TCP.
    /// A TCP endpoint beyond loopback is refused unless `auth` has a token.
    pub async fn bind(endpoint: &Endpoint, auth: &Auth) -> Result<Listener, ControlError> {
        match endpoint {
            Endpoint::Unix(path) => Ok(Listener::Unix(bind_unix(path).await?)),
            Endpoint::Tcp(_) => {
                let addrs = endpoint.resolve().await?;
                if !auth.has_token() && addrs.iter().any(|a| !a.ip().is_loopback()) {
                    return Err(ControlError::Endpoint(format!(
                        "refusing a control endpoint beyond loopback ({endpoint}) without a token: give --control-token-file"
                    )));
                }
                let l = TcpListener::bind(&addrs[..]).await.map_err(|e| {
                    ControlError::Endpoint(format!(
                        "cannot bind the control endpoint {endpoint}: {e}"
                    ))
                })?;
                Ok(Listener::Tcp(l))
            }
        }
    }
}

/// Accepts connections until the listener fails, answering each with `handler`.
pub async fn serve<H: Handler>(listener: impl Into<Listener>, handler: Arc<H>, auth: Auth) {
    let auth = Arc::new(auth);
    match listener.into() {
        Listener::Tcp(l) => loop {
            let Ok((stream, peer)) = l.accept().await else {
                continue;
            };
            spawn_answer(
                stream,
                Arc::clone(&handler),
                Some(Arc::clone(&auth)),
                peer.to_string(),
            );
        },
        Listener::Unix(l) => loop {
            let Ok((stream, _)) = l.accept().await else {
                continue;
            };
            match stream.peer_cred() {
                Ok(cred) if trusted_uid(cred.uid()) => {
                    spawn_answer(stream, Arc::clone(&handler), None, "unix socket".into());
                }
                Ok(cred) => tracing::warn!(
                    uid = cred.uid(),
                    "control connection from another user refused"
                ),
                Err(e) => {
                    tracing::debug!(error = %e, "control connection without credentials refused")
                }
            }
        },
    }
}

/// Serves one connection in its own task. `auth` is `None` where the transport already
/// vouched for the peer.
fn spawn_answer<S, H>(stream: S, handler: Arc<H>, auth: Option<Arc<Auth>>, peer: String)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
    H: Handler,
{
    tokio::spawn(async move {
        if let Err(e) = answer(stream, &*handler, auth.as_deref()).await {
            tracing::debug!(%peer, error = %e, "control connection failed");
        }
    });
}

/// Reads the request line; an error answer says what was wrong with it.
async fn read_request<R: AsyncRead + Unpin>(
    read: R,
    auth: Option<&Auth>,
) -> Result<Request, Response> {
    let error = |message: String| Response::Error { message };
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_LINE as u64));
    match tokio::time::timeout(READ_TIMEOUT, reader.read_line(&mut line)).await {
        Err(_) => return Err(error("timed out waiting for the request".into())),
        Ok(Err(e)) => return Err(error(format!("unreadable request: {e}"))),
        Ok(Ok(_)) => {}
    }
    let env: Envelope = serde_json::from_str(line.trim_end())
        .map_err(|e| error(format!("invalid request: {e}")))?;
    if auth.is_some_and(|a| !a.admits(env.token.as_ref().map(|t| t.0.as_str()))) {
        return Err(error(
            "unauthorized: this endpoint needs the control token (--control-token-file)".into(),
        ));
    }
    Ok(env.request)
}

async fn answer<S, H>(stream: S, handler: &H, auth: Option<&Auth>) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite,
    H: Handler,
{
    let (mut read, mut write) = tokio::io::split(stream);
    let req = match read_request(&mut read, auth).await {
        Ok(req) => req,
        Err(resp) => return send(&mut write, &resp).await.and(write.shutdown().await),
    };
    if let Some(mut lines) = handler.stream(&req) {
        // Until the stream ends or the client hangs up (a read that returns).
        let mut probe = [0u8; 1];
        loop {
            tokio::select! {
                next = lines.recv() => match next {
                    Some(resp) => send(&mut write, &resp).await?,
                    None => break,
                },
                _ = read.read(&mut probe) => break,
            }
        }
        return write.shutdown().await;
    }
    let response = handler.handle(req).await;
    send(&mut write, &response).await?;
    write.shutdown().await
}

async fn send<W: AsyncWrite + Unpin>(write: &mut W, resp: &Response) -> std::io::Result<()> {
    let mut out = serde_json::to_vec(resp).map_err(std::io::Error::other)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    write.flush().await
}
