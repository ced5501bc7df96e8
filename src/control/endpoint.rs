//! Where the control endpoint listens: a Unix domain socket by default, or TCP.
//!
//! A Unix socket is the default because the file system already says who may use it: the
//! agent makes it `0600` and serves only connections from its own user (or root), checked on
//! each connection with the peer's credentials. TCP is kept for scripts; beyond loopback it
//! needs a token (see [`Auth`](super::Auth)).

use std::fmt;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::ControlError;

/// A control endpoint as flags spell it: `unix:PATH` (or a path starting with `/` or `.`)
/// for a Unix socket, `HOST:PORT` for TCP (host names are looked up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix domain socket at this path.
    Unix(PathBuf),
    /// TCP at `host:port`.
    Tcp(String),
}

impl Endpoint {
    /// The default: `$XDG_RUNTIME_DIR/swimring.sock` if that is set, else
    /// `/run/swimring.sock` for root and `/tmp/swimring-UID.sock` for anyone else.
    pub fn default_socket() -> Endpoint {
        let dir = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty());
        Endpoint::Unix(match (dir, own_uid()) {
            (Some(dir), _) => Path::new(&dir).join("swimring.sock"),
            (None, Some(0)) => PathBuf::from("/run/swimring.sock"),
            (None, uid) => PathBuf::from(format!("/tmp/swimring-{}.sock", uid.unwrap_or(0))),
        })
    }

    /// The TCP addresses the endpoint names, looked up now.
    pub async fn resolve(&self) -> Result<Vec<SocketAddr>, ControlError> {
        let Endpoint::Tcp(hostport) = self else {
            return Ok(Vec::new());
        };
        let found: Vec<SocketAddr> = tokio::net::lookup_host(hostport.as_str())
            .await
            .map_err(|e| ControlError::Endpoint(format!("cannot resolve {hostport}: {e}")))?
            .collect();
        if found.is_empty() {
            return Err(ControlError::Endpoint(format!("{hostport} has no address")));
        }
        Ok(found)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::Tcp(a) => f.write_str(a),
        }
    }
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Endpoint, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a path, e.g. unix:/run/swimring.sock".into());
            }
            return Ok(Endpoint::Unix(path.into()));
        }
        if s.starts_with('/') || s.starts_with('.') {
            return Ok(Endpoint::Unix(s.into()));
        }
        match s.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(Endpoint::Tcp(s.to_owned()))
            }
            _ => Err(format!(
                "expected HOST:PORT or unix:PATH, got {s:?} (e.g. 127.0.0.1:7373, localhost:7373, unix:/run/swimring.sock)"
            )),
        }
    }
}

/// This process's user id, from the owner of `/proc/self`.
pub(crate) fn own_uid() -> Option<u32> {
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Whether a peer with user id `uid` may use this agent's socket: the same user, or root.
pub(crate) fn trusted_uid(uid: u32) -> bool {
    uid == 0 || Some(uid) == own_uid()
}

/// Refuses a socket another user owns: it is not this user's agent, and a request may carry
/// a key.
pub(crate) fn check_socket_owner(path: &Path) -> Result<(), ControlError> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(()); // connecting will say it is missing
    };
    if !trusted_uid(meta.uid()) {
        return Err(ControlError::Endpoint(format!(
            "{} belongs to user {}, not to you: refusing to talk to it",
            path.display(),
            meta.uid()
        )));
    }
    Ok(())
}

/// Binds a Unix socket at `path` readable and writable by its owner only. A stale socket
/// left by an agent that died is replaced; one that an agent still answers on is not.
pub(crate) async fn bind_unix(path: &Path) -> Result<tokio::net::UnixListener, ControlError> {
    let fail = |e: std::io::Error| {
        ControlError::Endpoint(format!(
            "cannot bind the control socket {}: {e}",
            path.display()
        ))
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(ControlError::Endpoint(format!(
                "{} exists and is not a socket: remove it or choose another --control",
                path.display()
            )));
        }
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(ControlError::Endpoint(format!(
                "another agent already serves {}",
                path.display()
            )));
        }
        std::fs::remove_file(path).map_err(fail)?;
    }
    // Bound under a temporary name and made private before it takes the real one, so no
    // other user can connect in between.
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    let listener = tokio::net::UnixListener::bind(&tmp).map_err(fail)?;
    let private = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = private {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_as_flags_spell_them() {
        let p = |s: &str| s.parse::<Endpoint>();
        assert_eq!(
            p("127.0.0.1:7373"),
            Ok(Endpoint::Tcp("127.0.0.1:7373".into()))
        );
        assert_eq!(
            p("localhost:7373"),
            Ok(Endpoint::Tcp("localhost:7373".into()))
        );
        assert_eq!(p("[::1]:7373"), Ok(Endpoint::Tcp("[::1]:7373".into())));
        assert_eq!(
            p("unix:/run/s.sock"),
            Ok(Endpoint::Unix("/run/s.sock".into()))
        );
        assert_eq!(p("./s.sock"), Ok(Endpoint::Unix("./s.sock".into())));
        for bad in ["localhost", "host:port", ":7373", "unix:", "h:70000"] {
            assert!(p(bad).is_err(), "{bad}");
        }
        assert_eq!(Endpoint::Unix("/x".into()).to_string(), "unix:/x");
    }
}
