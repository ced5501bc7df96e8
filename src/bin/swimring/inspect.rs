//! The subcommands that ask a running agent over its control endpoint.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use swimring::control::{Client, Endpoint, MemberInfo, Request, Response};
use swimring::placement::Balance;

use crate::settings::parse_tag;

const TIMEOUT: Duration = Duration::from_secs(10);
/// Leaving waits for the agent's own leave timeout first.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(30);

/// Which agent to ask, and how to print the answer.
#[derive(Args)]
pub struct Target {
    /// The agent's control endpoint: unix:PATH or HOST:PORT [default: the agent's default
    /// Unix socket].
    #[arg(long, env = "SWIMRING_CONTROL")]
    control: Option<Endpoint>,
    /// A file holding the control token, for an agent whose TCP endpoint needs one.
    #[arg(long, env = "SWIMRING_CONTROL_TOKEN_FILE")]
    control_token_file: Option<PathBuf>,
    /// Print the answer as one JSON object.
    #[arg(long)]
    pub json: bool,
}

impl Target {
    /// A client of the agent, with its token if a token file was given.
    pub fn client(&self) -> Result<Client, String> {
        let token = match &self.control_token_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|e| format!("cannot read control token file {}: {e}", p.display()))?
                    .trim()
                    .to_owned(),
            ),
            None => None,
        };
        let endpoint = self
            .control
            .clone()
            .unwrap_or_else(Endpoint::default_socket);
        Ok(Client::new(endpoint, token))
    }
}

/// A member state, as `--status` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFilter {
    /// Answering probes.
    Alive,
    /// Suspected.
    Suspect,
    /// Declared dead.
    Dead,
    /// Left on purpose.
    Left,
}

/// `swimring members`.
#[derive(Args)]
pub struct MembersArgs {
    /// Only members in this state (repeatable: any of them).
    #[arg(long = "status")]
    status: Vec<StatusFilter>,
    /// Only members carrying this tag KEY=VALUE (repeatable: all of them).
    #[arg(long = "tag", value_parser = parse_tag)]
    tag: Vec<(String, String)>,
    #[command(flatten)]
    target: Target,
}

impl MembersArgs {
    fn keeps(&self, m: &MemberInfo) -> bool {
        let state_ok = self.status.is_empty()
            || self.status.iter().any(|s| {
                s.to_possible_value()
                    .is_some_and(|v| v.get_name() == m.state)
            });
        state_ok && self.tag.iter().all(|(k, v)| m.tags.get(k) == Some(v))
    }
}

/// `swimring owner`.
#[derive(Args)]
pub struct OwnerArgs {
    /// The task key.
    key: String,
    /// How many distinct owners to list, in failover order.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1000))]
    replicas: u16,
    #[command(flatten)]
    target: Target,
}

/// Sends a request to the agent and waits the usual time for its answer.
pub async fn ask(t: &Target, req: Request) -> Result<Response, String> {
    ask_within(t, req, TIMEOUT).await
}

async fn ask_within(t: &Target, req: Request, timeout: Duration) -> Result<Response, String> {
    match t.client()?.call(&req, timeout).await {
        Ok(Response::Error { message }) => Err(format!("the agent refused: {message}")),
        Ok(resp) => Ok(resp),
        Err(e) => Err(e.to_string()),
    }
}

pub fn print_json(resp: &Response) -> Result<(), String> {
    let line = serde_json::to_string(resp).map_err(|e| e.to_string())?;
    println!("{line}");
    Ok(())
}

pub fn unexpected(resp: &Response) -> String {
    format!("unexpected answer from the agent: {resp:?}")
}

fn tags(m: &MemberInfo) -> String {
    let mut s = String::new();
    for (k, v) in &m.tags {
        let _ = write!(s, "{}{k}={v}", if s.is_empty() { "" } else { "," });
    }
    s
}

/// Formats members as an aligned table.
pub fn members_table(members: &[MemberInfo]) -> String {
    let w = members
        .iter()
        .map(|m| m.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let a = members
        .iter()
        .map(|m| m.addr.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let mut out = format!(
        "{:w$}  {:a$}  {:8}  {:>11}  TAGS\n",
        "NAME", "ADDRESS", "STATE", "INCARNATION"
    );
    for m in members {
        let _ = writeln!(
            out,
            "{:w$}  {:a$}  {:8}  {:>11}  {}",
            m.name,
            m.addr,
            m.state,
            m.incarnation,
            tags(m)
        );
    }
    out
}

pub async fn members(args: MembersArgs) -> Result<(), String> {
    let resp = ask(&args.target, Request::Members).await?;
    let Response::Members { mut members } = resp else {
        return Err(unexpected(&resp));
    };
    members.retain(|m| args.keeps(m));
    if args.target.json {
        return print_json(&Response::Members { members });
    }
    print!("{}", members_table(&members));
    Ok(())
}

pub async fn owner(args: OwnerArgs) -> Result<(), String> {
    let req = Request::Owner {
        key: args.key,
        replicas: args.replicas.into(),
    };
    let resp = ask(&args.target, req).await?;
    if args.target.json {
        return print_json(&resp);
    }
    let Response::Owner { key, owners, task } = &resp else {
        return Err(unexpected(&resp));
    };
    if owners.is_empty() {
        return Err(format!("no member may own {key:?} (no live members)"));
    }
    println!("{}", owners.join(" "));
    if !task {
        eprintln!(
            "note: {key:?} is not a registered task of this agent; this is where it would be placed"
        );
    }
    Ok(())
}

pub async fn status(t: Target) -> Result<(), String> {
    let resp = ask(&t, Request::Status).await?;
    if t.json {
        return print_json(&resp);
    }
    let Response::Status(s) = &resp else {
        return Err(unexpected(&resp));
    };
    println!("name:          {}", s.member.name);
    println!("address:       {}", s.member.addr);
    println!(
        "state:         {} (incarnation {})",
        s.member.state, s.member.incarnation
    );
    println!("local health:  {} (0 is healthy)", s.health_score);
    println!("ring checksum: {}", s.ring_checksum);
    let by_state: Vec<String> = s
        .members_by_state
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    println!("members:       {}", by_state.join(" "));
    for (k, v) in &s.counters {
        println!("  {k:24} {v}");
    }
    Ok(())
}

/// `swimring tasks`.
#[derive(Args)]
pub struct TasksArgs {
    /// Every member's task count against its weight, with the peak/mean, instead of this
    /// agent's own tasks.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    target: Target,
}

pub async fn tasks(args: TasksArgs) -> Result<(), String> {
    let t = &args.target;
    let resp = ask(t, Request::Tasks { all: args.all }).await?;
    if t.json {
        return print_json(&resp);
    }
    match &resp {
        Response::Tasks { tasks } => {
            for task in tasks {
                println!("{:24} token {}", task.key, task.token);
            }
        }
        Response::Balance(b) => print!("{}", balance_table(b)),
        _ => return Err(unexpected(&resp)),
    }
    Ok(())
}

/// Each member's tasks against its fair share (its weight's share of the tasks), then the
/// peak/mean: the busiest member's tasks over its fair share.
pub fn balance_table(b: &Balance) -> String {
    let mut out = format!(
        "{:24} {:>6} {:>6} {:>7} {:>10}\n",
        "MEMBER", "TASKS", "WEIGHT", "FAIR", "TASKS/FAIR"
    );
    for m in &b.members {
        let fair = b.fair(m);
        let ratio = if fair > 0.0 {
            m.tasks as f64 / fair
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "{:24} {:>6} {:>6} {:>7.1} {:>10.2}",
            m.name, m.tasks, m.weight, fair, ratio
        );
    }
    let _ = writeln!(
        out,
        "{} tasks on {} members; peak/mean {:.2}",
        b.tasks,
        b.members.len(),
        b.peak_mean()
    );
    out
}

pub async fn leave(t: Target) -> Result<(), String> {
    let resp = ask_within(&t, Request::Leave, LEAVE_TIMEOUT).await?;
    if t.json {
        return print_json(&resp);
    }
    match resp {
        Response::Left { disseminated: true } => {
            println!("left: every peer the protocol means to tell was told");
            Ok(())
        }
        Response::Left {
            disseminated: false,
        } => {
            println!("left, but the leave timed out before every peer was told");
            Ok(())
        }
        other => Err(unexpected(&other)),
    }
}
