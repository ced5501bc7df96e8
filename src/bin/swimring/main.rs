//! `swimring`: run an agent, inspect and steer it, or watch a demo mesh.
//!
//! A thin layer over the library: argument parsing, settings precedence, output formatting.
//! Every error ends as one line on stderr and a non-zero exit code.

mod agent;
mod demo;
mod generate;
mod handler;
mod http;
mod inspect;
mod keys;
mod logging;
mod ops;
mod reload;
mod settings;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "swimring",
    version,
    about = "Membership and work placement without a coordinator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a peer: join the mesh through seeds and serve the control endpoint.
    Agent(Box<settings::AgentArgs>),
    /// Check an agent's settings (the same flags, environment and --config) and exit.
    Validate(Box<settings::AgentArgs>),
    /// Start a local mesh in this process, kill a node, and show detection and reassignment.
    Demo(demo::DemoArgs),
    /// List the members a running agent knows (optionally filtered).
    Members(inspect::MembersArgs),
    /// Show who owns a task key (and its failover order).
    Owner(inspect::OwnerArgs),
    /// Show an agent's own state, health, ring checksum and counters.
    Status(inspect::Target),
    /// Show an agent's version, protocol version, uptime, profile, keys and addresses.
    Info(inspect::Target),
    /// List the tasks an agent owns now and their fencing tokens (--all: every member's share).
    Tasks(inspect::TasksArgs),
    /// Stream a running agent's events (and, with --logs, its log lines) until stopped.
    Monitor(ops::MonitorArgs),
    /// Ask a running agent to join through more seeds.
    Join(ops::JoinArgs),
    /// Mark a failed member left on every agent (serf's force-leave), or forget it.
    ForceLeave(ops::ForceLeaveArgs),
    /// Set or delete a running agent's tags.
    Tags(ops::TagsArgs),
    /// Broadcast a user event NAME [PAYLOAD] to every member through a running agent.
    Event(ops::EventArgs),
    /// Ask an agent to leave the mesh gracefully and stop.
    Leave(inspect::Target),
    /// List, install, use or remove a running agent's cluster keys (rotation without
    /// downtime).
    Keys(keys::KeysArgs),
    /// Print a new random cluster key (base64), for a key file or SWIMRING_KEY.
    Keygen,
    /// Print shell completions or the man page.
    Generate(generate::GenerateArgs),
}

/// clap's error as one line: what was wrong, and the valid values if it lists them.
fn one_line(rendered: &str) -> String {
    rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more"))
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_owned()
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            eprintln!("swimring: {}", one_line(&e.render().to_string()));
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("swimring: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Agent(args) => agent::run(*args).await,
            Command::Validate(args) => validate::validate(*args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Members(args) => inspect::members(args).await,
            Command::Owner(args) => inspect::owner(args).await,
            Command::Status(t) => inspect::status(t).await,
            Command::Info(t) => ops::info(t).await,
            Command::Tasks(args) => inspect::tasks(args).await,
            Command::Monitor(args) => ops::monitor(args).await,
            Command::Join(args) => ops::join(args).await,
            Command::ForceLeave(args) => ops::force_leave(args).await,
            Command::Tags(args) => ops::tags(args).await,
            Command::Event(args) => ops::event(args).await,
            Command::Leave(t) => inspect::leave(t).await,
            Command::Keys(args) => keys::keys(args).await,
            Command::Keygen => keys::keygen(),
            Command::Generate(args) => generate::generate(args),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("swimring: {message}");
            ExitCode::FAILURE
        }
    }
}
