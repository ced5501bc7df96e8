//! The injected bug's wrapper around a node's output ([`Bug::DropOwnRefutation`]): it lives
//! in the simulator, never in the protocol core.

use bytes::Bytes;
use swimring::wire::codec::{self, Transport};
use swimring::wire::{Message, Update};

use super::{Bug, Cluster, NodeId};

impl Cluster {
    pub(super) fn filter(&self, id: NodeId, payload: Bytes, transport: Transport) -> Bytes {
        if self.bug != Bug::DropOwnRefutation {
            return payload;
        }
        let me = self.nodes[id].swim.local();
        let label = self.nodes[id].swim.config().label.clone();
        let Ok(env) = codec::decode(&payload, &label, &self.limits, transport) else {
            return payload;
        };
        let own_alive = |msg: &Message| matches!(msg, Message::Update(Update::Alive(a)) if a.name == me.name && a.incarnation > 0);
        let mut changed = false;
        let mut kept = Vec::with_capacity(env.messages.len());
        for mut msg in env.messages {
            if own_alive(&msg) {
                changed = true;
                continue;
            }
            if let Message::PushPull(pp) = &mut msg {
                let before = pp.members.len();
                pp.members
                    .retain(|m| !(m.name == me.name && m.incarnation > 0));
                changed |= pp.members.len() != before;
            }
            kept.push(msg);
        }
        if !changed {
            return payload;
        }
        codec::encode_messages(&label, &kept)
    }
}
