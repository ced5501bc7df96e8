//! Asking an agent over its control endpoint.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UnixStream};

use super::endpoint::check_socket_owner;
use super::{ControlError, Endpoint, Envelope, MAX_LINE, Request, Response, SecretString};

/// A connection to an agent's control endpoint, with the token it needs, if any.
#[derive(Debug, Clone)]
pub struct Client {
    endpoint: Endpoint,
    token: Option<SecretString>,
}

/// Either transport, read and written alike.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

impl Client {
    /// A client of the agent at `endpoint`, sending `token` with each request if given.
    pub fn new(endpoint: Endpoint, token: Option<String>) -> Client {
        Client {
            endpoint,
            token: token.map(SecretString),
        }
    }

    async fn connect(&self) -> Result<Box<dyn Stream>, ControlError> {
        let addr = self.endpoint.to_string();
        let unreachable = |source| ControlError::Unreachable {
            addr: addr.clone(),
            source,
        };
        Ok(match &self.endpoint {
            Endpoint::Unix(path) => {
                check_socket_owner(path)?;
                Box::new(UnixStream::connect(path).await.map_err(unreachable)?)
            }
            Endpoint::Tcp(hostport) => Box::new(
                TcpStream::connect(hostport.as_str())
                    .await
                    .map_err(unreachable)?,
            ),
        })
    }

    /// Connects and sends `req`; returns the reader of the answer lines.
    async fn open(&self, req: &Request) -> Result<BufReader<Box<dyn Stream>>, ControlError> {
        let mut stream = self.connect().await?;
        let env = Envelope {
            token: self.token.clone(),
            request: req.clone(),
        };
        let mut line = serde_json::to_vec(&env).expect("requests always serialise");
        line.push(b'\n');
        stream
            .write_all(&line)
            .await
            .map_err(|e| self.bad(e.to_string()))?;
        Ok(BufReader::new(stream))
    }

    fn bad(&self, reason: String) -> ControlError {
        ControlError::BadResponse {
            addr: self.endpoint.to_string(),
            reason,
        }
    }

    /// Reads one answer line; `None` when the agent closed the connection.
    async fn next<R: AsyncRead + Unpin>(
        &self,
        reader: &mut BufReader<R>,
    ) -> Result<Option<Response>, ControlError> {
        let mut answer = String::new();
        let n = (&mut *reader)
            .take(MAX_LINE as u64)
            .read_line(&mut answer)
            .await
            .map_err(|e| self.bad(e.to_string()))?;
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_str(answer.trim_end())
            .map(Some)
            .map_err(|e| self.bad(e.to_string()))
    }

    /// Sends one request and returns its answer, waiting at most `timeout`.
    pub async fn call(&self, req: &Request, timeout: Duration) -> Result<Response, ControlError> {
        let exchange = async {
            let mut reader = self.open(req).await?;
            self.next(&mut reader)
                .await?
                .ok_or_else(|| self.bad("the agent closed the connection without answering".into()))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ControlError::Timeout(self.endpoint.to_string()))?
    }

    /// Sends a streaming request ([`Request::Monitor`]) and hands each answer to `each`
    /// until the agent closes the stream or `each` returns false.
    pub async fn stream(
        &self,
        req: &Request,
        mut each: impl FnMut(Response) -> bool,
    ) -> Result<(), ControlError> {
        let mut reader = self.open(req).await?;
        while let Some(resp) = self.next(&mut reader).await? {
            if !each(resp) {
                break;
            }
        }
        Ok(())
    }
}

/// Sends one request to the agent at `addr` (`HOST:PORT` or `unix:PATH`) without a token
/// and returns its answer, waiting at most `timeout`.
pub async fn call(addr: &str, req: &Request, timeout: Duration) -> Result<Response, ControlError> {
    let endpoint = addr.parse().map_err(ControlError::Endpoint)?;
    Client::new(endpoint, None).call(req, timeout).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::control::{Auth, Handler, serve};

    struct Echo;

    impl Handler for Echo {
        async fn handle(&self, req: Request) -> Response {
            match req {
                Request::Owner { key, replicas } => Response::Owner {
                    key,
                    owners: vec!["n".into(); replicas],
                    task: false,
                },
                _ => Response::Left { disseminated: true },
            }
        }
    }

    #[tokio::test]
    async fn request_and_answer_round_trip() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(serve(listener, Arc::new(Echo), Auth::none()));
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
                owners: vec!["n".into(), "n".into()],
                task: false,
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
    async fn a_tcp_endpoint_with_a_token_refuses_requests_without_it() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = Endpoint::Tcp(listener.local_addr().unwrap().to_string());
        tokio::spawn(serve(listener, Arc::new(Echo), Auth::token("s3cret")));
        let t = Duration::from_secs(10);
        for token in [None, Some("wrong".to_owned())] {
            let resp = Client::new(endpoint.clone(), token)
                .call(&Request::Status, t)
                .await;
            assert!(
                matches!(&resp, Ok(Response::Error { message }) if message.starts_with("unauthorized")),
                "{resp:?}"
            );
        }
        let ok = Client::new(endpoint, Some("s3cret".into()));
        assert!(matches!(
            ok.call(&Request::Status, t).await,
            Ok(Response::Left { .. })
        ));
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
