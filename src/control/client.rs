//! Asking an agent over its control endpoint.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{ControlError, MAX_LINE, Request, Response};

/// Sends one request to the agent at `addr` and returns its answer, waiting at most `timeout`.
pub async fn call(addr: &str, req: &Request, timeout: Duration) -> Result<Response, ControlError> {
    let exchange = async {
        let mut stream =
            TcpStream::connect(addr)
                .await
                .map_err(|source| ControlError::Unreachable {
                    addr: addr.to_owned(),
                    source,
                })?;
        let bad = |reason: String| ControlError::BadResponse {
            addr: addr.to_owned(),
            reason,
        };
        let mut line = serde_json::to_vec(req).expect("requests always serialise");
        line.push(b'\n');
        stream
            .write_all(&line)
            .await
            .map_err(|e| bad(e.to_string()))?;
        let mut answer = String::new();
        BufReader::new(stream.take(MAX_LINE as u64))
            .read_line(&mut answer)
            .await
            .map_err(|e| bad(e.to_string()))?;
        serde_json::from_str(answer.trim_end()).map_err(|e| bad(e.to_string()))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ControlError::Timeout(addr.to_owned()))?
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::control::{Handler, serve};

    struct Echo;

    impl Handler for Echo {
        async fn handle(&self, req: Request) -> Response {
            match req {
                Request::Owner { key, replicas } => Response::Owner {
                    key,
                    owners: vec!["n".into(); replicas],
                },
                _ => Response::Left,
            }
        }
    }

    #[tokio::test]
    async fn request_and_answer_round_trip() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(serve(listener, Arc::new(Echo)));
        let t = Duration::from_secs(10);
        let req = Request::Owner {
            key: "k".into(),
            replicas: 2,
        };
        let resp = call(&addr, &req, t).await.unwrap();
        assert_eq!(
            resp,
            Response::Owner {
                key: "k".into(),
                owners: vec!["n".into(), "n".into()]
            }
        );
        // Garbage gets an error answer, not a dropped connection or a crash.
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"{not json\n").await.unwrap();
        let mut answer = String::new();
        BufReader::new(s).read_line(&mut answer).await.unwrap();
        let resp: Response = serde_json::from_str(answer.trim_end()).unwrap();
        assert!(matches!(resp, Response::Error { .. }), "{resp:?}");
    }

    #[tokio::test]
    async fn nobody_listening_is_unreachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let err = call(&addr, &Request::Status, Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(matches!(err, ControlError::Unreachable { .. }), "{err}");
    }
}
