//! The serf-class commands that change or watch a running agent: `join`, `force-leave`,
//! `tags`, `event`, `info` and `monitor`.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use swimring::control::{Request, Response};

use crate::inspect::{Target, ask, print_json, unexpected};
use crate::settings::{LogLevel, parse_tag};

/// `swimring join`.
#[derive(Args)]
pub struct JoinArgs {
    /// Seeds to join through, HOST:PORT.
    #[arg(required = true)]
    seeds: Vec<String>,
    #[command(flatten)]
    target: Target,
}

/// `swimring force-leave`.
#[derive(Args)]
pub struct ForceLeaveArgs {
    /// The failed member's name.
    name: String,
    /// Also forget the member at once on this agent (others forget it when their dead
    /// retention ends).
    #[arg(long)]
    prune: bool,
    #[command(flatten)]
    target: Target,
}

/// `swimring tags`.
#[derive(Args)]
pub struct TagsArgs {
    #[command(subcommand)]
    op: TagsOp,
}

#[derive(Subcommand)]
enum TagsOp {
    /// Set tags KEY=VALUE (added or replaced) and publish them.
    Set {
        /// Tags, KEY=VALUE.
        #[arg(required = true, value_parser = parse_tag)]
        tags: Vec<(String, String)>,
        #[command(flatten)]
        target: Target,
    },
    /// Delete tags by key and publish the rest.
    Delete {
        /// Tag keys.
        #[arg(required = true)]
        keys: Vec<String>,
        #[command(flatten)]
        target: Target,
    },
}

/// `swimring event`.
#[derive(Args)]
pub struct EventArgs {
    /// The event's name (1 to 64 bytes).
    name: String,
    /// Its payload, as text (default: empty). Name and payload together are bounded by a
    /// datagram's share for user events, about 500 bytes.
    #[arg(default_value = "")]
    payload: String,
    #[command(flatten)]
    target: Target,
}

/// `swimring monitor`.
#[derive(Args)]
pub struct MonitorArgs {
    /// Also stream the agent's log lines at this level and above.
    #[arg(long)]
    logs: Option<LogLevel>,
    #[command(flatten)]
    target: Target,
}

pub async fn join(args: JoinArgs) -> Result<(), String> {
    let resp = ask(&args.target, Request::Join { seeds: args.seeds }).await?;
    if args.target.json {
        return print_json(&resp);
    }
    match resp {
        Response::Joined { answered: 0 } => Err(
            "no seed answered with a state this agent could read (unreachable, or a wrong key or cluster label?)".into(),
        ),
        Response::Joined { answered } => {
            println!("joined: {answered} seeds answered");
            Ok(())
        }
        other => Err(unexpected(&other)),
    }
}

pub async fn force_leave(args: ForceLeaveArgs) -> Result<(), String> {
    let req = Request::ForceLeave {
        name: args.name,
        prune: args.prune,
    };
    let resp = ask(&args.target, req).await?;
    if args.target.json {
        return print_json(&resp);
    }
    match resp {
        Response::ForcedLeave { member, pruned } => {
            let how = if pruned {
                "left, and forgotten here"
            } else {
                "left"
            };
            println!("{}: {how}", member.name);
            Ok(())
        }
        other => Err(unexpected(&other)),
    }
}

pub async fn tags(args: TagsArgs) -> Result<(), String> {
    let (req, target) = match args.op {
        TagsOp::Set { tags, target } => {
            let set: BTreeMap<String, String> = tags.into_iter().collect();
            let delete = Vec::new();
            (Request::SetTags { set, delete }, target)
        }
        TagsOp::Delete { keys, target } => {
            if let Some(k) = keys.iter().find(|k| k.is_empty() || k.contains('=')) {
                return Err(format!(
                    "invalid tag key {k:?}: give the key alone, without '='"
                ));
            }
            let set = BTreeMap::new();
            (Request::SetTags { set, delete: keys }, target)
        }
    };
    let resp = ask(&target, req).await?;
    if target.json {
        return print_json(&resp);
    }
    let Response::Tags { tags } = &resp else {
        return Err(unexpected(&resp));
    };
    for (k, v) in tags {
        println!("{k}={v}");
    }
    Ok(())
}

/// Broadcasts a user event through the agent; each agent's `--events json` prints it.
pub async fn event(args: EventArgs) -> Result<(), String> {
    let req = Request::UserEvent {
        name: args.name,
        payload: args.payload,
    };
    let resp = ask(&args.target, req).await?;
    if args.target.json {
        return print_json(&resp);
    }
    match resp {
        Response::UserEventSent { name, seq } => {
            println!("event {name} sent (seq {seq})");
            Ok(())
        }
        other => Err(unexpected(&other)),
    }
}

pub async fn info(t: Target) -> Result<(), String> {
    let resp = ask(&t, Request::Info).await?;
    if t.json {
        return print_json(&resp);
    }
    let Response::Info(i) = &resp else {
        return Err(unexpected(&resp));
    };
    let keys = if i.keys.is_empty() {
        "none (plaintext)".to_owned()
    } else {
        i.keys.join(" ")
    };
    println!("name:             {}", i.name);
    println!("version:          {}", i.version);
    println!("protocol version: {}", i.protocol_version);
    println!("uptime:           {} s", i.uptime_secs);
    println!("profile:          {}", i.profile);
    println!("keys:             {keys}");
    println!(
        "gossip:           {} (advertised {})",
        i.gossip, i.advertise
    );
    println!("control:          {}", i.control);
    println!(
        "metrics:          {}",
        i.metrics.as_deref().unwrap_or("not served")
    );
    Ok(())
}

/// Streams until the agent stops or the pipe closes; each answer is one line.
pub async fn monitor(args: MonitorArgs) -> Result<(), String> {
    let req = Request::Monitor {
        logs: args.logs.map(|l| l.as_str().to_owned()),
    };
    let json = args.target.json;
    let mut refused = None;
    let printed = args
        .target
        .client()?
        .stream(&req, |resp| {
            use std::io::Write;
            let line = match &resp {
                Response::Error { message } if refused.is_none() => {
                    refused = Some(message.clone());
                    return false;
                }
                _ if json => serde_json::to_string(&resp).unwrap_or_default(),
                Response::Event { event } => event.to_string(),
                Response::Log(l) => {
                    format!("{} {:5} {}", l.ts_ms, l.level.to_uppercase(), l.message)
                }
                other => format!("{other:?}"),
            };
            writeln!(std::io::stdout().lock(), "{line}").is_ok()
        })
        .await;
    if let Some(message) = refused {
        return Err(format!("the agent refused: {message}"));
    }
    printed.map_err(|e| e.to_string())
}
