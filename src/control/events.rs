//! Events as JSON objects: what `swimring agent --events json` prints and `swimring monitor`
//! streams, in one place.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use base64::Engine as _;

use super::member_info;
use crate::proto::{Event, UserEvent};
use crate::runtime::TaskChange;

/// Unix time in seconds, the `ts` of every event.
#[allow(clippy::disallowed_methods)] // events are stamped with wall-clock time for people
pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Every `event` kind these objects carry: the membership events' ([`Event::kind`]), the
/// task changes' and the user events'.
pub const EVENT_KINDS: &[&str] = &[
    "member_joined",
    "member_suspect",
    "member_recovered",
    "member_dead",
    "member_left",
    "member_updated",
    "member_restarted",
    "name_conflict",
    TASKS_ACQUIRED,
    TASKS_RELEASED,
    USER_EVENT,
];

const TASKS_ACQUIRED: &str = "tasks_acquired";
const TASKS_RELEASED: &str = "tasks_released";
const USER_EVENT: &str = "user_event";

/// One membership event: `ts`, `event` (its kind) and the member's fields; a name conflict
/// carries both addresses instead.
pub fn event_json(e: &Event) -> Value {
    match e {
        Event::NameConflict {
            name,
            existing,
            claimant,
        } => json!({
            "ts": unix_now(), "event": e.kind(), "member": name,
            "existing": existing.to_string(), "claimant": claimant.to_string(),
        }),
        _ => {
            let m = e.member().map(member_info);
            json!({
                "ts": unix_now(),
                "event": e.kind(),
                "member": m.as_ref().map(|m| m.name.clone()),
                "addr": m.as_ref().map(|m| m.addr.clone()),
                "state": m.as_ref().map(|m| m.state.clone()),
                "incarnation": m.as_ref().map(|m| m.incarnation),
                "run": m.as_ref().map(|m| m.run),
                "tags": m.map(|m| m.tags),
            })
        }
    }
}

/// A task change as up to two events, `tasks_acquired` (with the fencing token every one of
/// its tasks is held by) and `tasks_released`, none for an empty side, about the local
/// member `local`.
pub fn task_change_json(local: &str, c: &TaskChange) -> Vec<Value> {
    let checksum = format!("{:016x}", c.ring_checksum);
    let mut out = Vec::new();
    if !c.acquired.is_empty() {
        out.push(json!({
            "ts": unix_now(), "event": TASKS_ACQUIRED, "member": local,
            "tasks": c.acquired, "token": c.token, "ring_checksum": checksum,
        }));
    }
    if !c.released.is_empty() {
        out.push(json!({
            "ts": unix_now(), "event": TASKS_RELEASED, "member": local,
            "tasks": c.released, "ring_checksum": checksum,
        }));
    }
    out
}

/// A user event: `ts`, `"event": "user_event"`, its `name`, the member it came `from` (as its
/// frame names it) with that member's `run` and the event's `seq`, and its payload: as
/// `payload`, text, when it is valid UTF-8, else as `payload_base64` (standard base64), so a
/// line is always valid JSON and a text payload reads as itself.
pub fn user_event_json(e: &UserEvent) -> Value {
    let mut v = json!({
        "ts": unix_now(), "event": USER_EVENT, "name": e.name, "from": e.from,
        "run": e.run, "seq": e.seq,
    });
    match std::str::from_utf8(&e.payload) {
        Ok(text) => v["payload"] = text.into(),
        Err(_) => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&e.payload);
            v["payload_base64"] = b64.into();
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_member;
    use crate::wire::State;

    fn event(payload: &'static [u8]) -> UserEvent {
        UserEvent {
            from: "a".into(),
            run: 7,
            seq: 2,
            name: "deploy".into(),
            payload: bytes::Bytes::from_static(payload),
        }
    }

    #[test]
    fn a_text_payload_reads_as_text_and_bytes_as_base64() {
        let text = user_event_json(&event(b"v42"));
        assert_eq!(
            (
                &text["event"],
                &text["name"],
                &text["from"],
                &text["payload"]
            ),
            (
                &json!("user_event"),
                &json!("deploy"),
                &json!("a"),
                &json!("v42")
            )
        );
        assert!(text.get("payload_base64").is_none());
        let bin = user_event_json(&event(&[0xff, 0x00]));
        assert_eq!(bin["payload_base64"], "/wA=");
        assert!(bin.get("payload").is_none());
        assert_eq!((&bin["run"], &bin["seq"]), (&json!(7), &json!(2)));
    }

    #[test]
    fn every_event_kind_is_listed() {
        let m = test_member("a", State::Alive);
        let events = [
            Event::Joined(m.clone()),
            Event::Suspect(m.clone()),
            Event::Recovered(m.clone()),
            Event::Dead(m.clone()),
            Event::Left(m.clone()),
            Event::Updated(m.clone()),
            Event::Restarted(m.clone()),
            Event::NameConflict {
                name: "a".into(),
                existing: m.addr,
                claimant: m.addr,
            },
        ];
        for e in &events {
            assert!(
                EVENT_KINDS.contains(&e.kind()),
                "{} is not listed",
                e.kind()
            );
        }
        assert_eq!(
            EVENT_KINDS.len(),
            events.len() + 3,
            "and the two task changes and user events"
        );
    }
}
