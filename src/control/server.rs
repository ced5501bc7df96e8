//! Serving the control endpoint.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::{MAX_LINE, Request, Response};

/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers control requests; the agent implements it over its `Mesh`.
pub trait Handler: Send + Sync + 'static {
    /// Serves one request.
    fn handle(&self, req: Request) -> impl Future<Output = Response> + Send;
}

/// Accepts connections until the listener fails, answering each with `handler`.
pub async fn serve<H: Handler>(listener: TcpListener, handler: Arc<H>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &*handler).await {
                tracing::debug!(%peer, error = %e, "control connection failed");
            }
        });
    }
}

async fn answer<H: Handler>(stream: TcpStream, handler: &H) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_LINE as u64));
    let read = tokio::time::timeout(READ_TIMEOUT, reader.read_line(&mut line)).await;
    let response = match read {
        Err(_) => Response::Error {
            message: "timed out waiting for the request".into(),
        },
        Ok(Err(e)) => Response::Error {
            message: format!("unreadable request: {e}"),
        },
        Ok(Ok(_)) => match serde_json::from_str::<Request>(line.trim_end()) {
            Ok(req) => handler.handle(req).await,
            Err(e) => Response::Error {
                message: format!("invalid request: {e}"),
            },
        },
    };
    let mut out = serde_json::to_vec(&response).map_err(std::io::Error::other)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    write.shutdown().await
}
