//! The control endpoint over a running [`Mesh`]: what `swimring agent` serves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::{Handler, MemberInfo, Request, Response, StatusInfo};
use crate::error::Error;
use crate::proto::Member;
use crate::runtime::Mesh;
use crate::wire::codec::decode_tags;
use crate::wire::{Key, KeyId};

/// Most owners one `owner` request may list.
const MAX_REPLICAS: usize = 1000;

/// Answers control requests from a mesh's own view. A `leave` request leaves gracefully and
/// then wakes [`MeshHandler::stopped`], so the process can exit.
pub struct MeshHandler {
    mesh: Mesh,
    leave_timeout: Duration,
    stopped: Arc<Notify>,
}

impl MeshHandler {
    /// A handler for `mesh`; a `leave` request waits at most `leave_timeout` for the leave to
    /// be gossiped.
    pub fn new(mesh: Mesh, leave_timeout: Duration) -> MeshHandler {
        MeshHandler {
            mesh,
            leave_timeout,
            stopped: Arc::new(Notify::new()),
        }
    }

    /// Notified once a `leave` request has been served.
    pub fn stopped(&self) -> Arc<Notify> {
        Arc::clone(&self.stopped)
    }
}

/// A member as the control endpoint shows it. Metadata that is not tags shows as none.
pub fn member_info(m: &Member) -> MemberInfo {
    MemberInfo {
        name: m.name.clone(),
        addr: m.addr.to_string(),
        state: m.state.as_str().to_owned(),
        incarnation: m.incarnation,
        run: m.run,
        tags: decode_tags(&m.meta).unwrap_or_default(),
    }
}

fn status(mesh: &Mesh) -> StatusInfo {
    let members = mesh.members();
    let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
    for m in &members {
        *by_state.entry(m.state.as_str().to_owned()).or_default() += 1;
    }
    let st = mesh.stats();
    StatusInfo {
        member: member_info(&mesh.local()),
        health_score: st.protocol.health_score,
        ring_checksum: format!("{:016x}", mesh.ring_checksum()),
        members_by_state: by_state,
        counters: st
            .counters()
            .into_iter()
            .map(|c| (c.name.to_string(), c.value))
            .collect(),
    }
}

/// The key list after a key request, or why it was refused.
fn keys_after(mesh: &Mesh, done: Result<(), Error>) -> Response {
    match done {
        Ok(()) => Response::Keys {
            ids: mesh.keys().iter().map(KeyId::to_string).collect(),
        },
        Err(e) => Response::Error {
            message: e.to_string(),
        },
    }
}

impl Handler for MeshHandler {
    async fn handle(&self, req: Request) -> Response {
        match req {
            Request::Members => Response::Members {
                members: self.mesh.members().iter().map(member_info).collect(),
            },
            Request::Owner { key, replicas } => Response::Owner {
                owners: self.mesh.owners(&key, replicas.clamp(1, MAX_REPLICAS)),
                key,
            },
            Request::Status => Response::Status(Box::new(status(&self.mesh))),
            Request::Tasks => Response::Tasks {
                tasks: self.mesh.owned_tasks(),
            },
            Request::Leave => match self.mesh.leave(self.leave_timeout).await {
                Ok(_) => {
                    self.stopped.notify_one();
                    Response::Left
                }
                Err(e) => Response::Error {
                    message: e.to_string(),
                },
            },
            Request::ListKeys => keys_after(&self.mesh, Ok(())),
            Request::InstallKey { key } => {
                let done = Key::from_base64(&key.0)
                    .map_err(Error::from)
                    .and_then(|k| self.mesh.install_key(k));
                keys_after(&self.mesh, done)
            }
            Request::UseKey { id } => {
                let done = id
                    .parse::<KeyId>()
                    .map_err(Error::from)
                    .and_then(|id| self.mesh.use_key(id));
                keys_after(&self.mesh, done)
            }
            Request::RemoveKey { id } => {
                let done = id
                    .parse::<KeyId>()
                    .map_err(Error::from)
                    .and_then(|id| self.mesh.remove_key(id));
                keys_after(&self.mesh, done)
            }
        }
    }
}
