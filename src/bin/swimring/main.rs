//! `swimring`: run an agent, inspect and steer it, or watch a demo mesh.
//!
//! A thin layer over the library: argument parsing, settings precedence, output formatting.
//! Every error ends as one line on stderr and a non-zero exit code.

mod agent;
mod demo;
mod inspect;
mod keys;
mod settings;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Default control endpoint, on loopback (serf's RPC port).
pub const DEFAULT_CONTROL: &str = "127.0.0.1:7373";

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
    /// Start a local mesh in this process, kill a node, and show detection and reassignment.
    Demo(demo::DemoArgs),
    /// List the members a running agent knows.
    Members(inspect::MembersArgs),
    /// Show who owns a task key (and its failover order).
    Owner(inspect::OwnerArgs),
    /// Show an agent's own state, health, ring checksum and counters.
    Status(inspect::Target),
    /// List the tasks an agent owns now.
    Tasks(inspect::Target),
    /// Ask an agent to leave the mesh gracefully and stop.
    Leave(inspect::Target),
    /// List, install, use or remove a running agent's cluster keys (rotation without
    /// downtime).
    Keys(keys::KeysArgs),
    /// Print a new random cluster key (base64), for a key file or SWIMRING_KEY.
    Keygen,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // One line, not clap's usage block: the first line says what was wrong.
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!("swimring: {}", first.trim_start_matches("error: "));
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
            Command::Demo(args) => demo::run(args).await,
            Command::Members(args) => inspect::members(args).await,
            Command::Owner(args) => inspect::owner(args).await,
            Command::Status(t) => inspect::status(t).await,
            Command::Tasks(t) => inspect::tasks(t).await,
            Command::Leave(t) => inspect::leave(t).await,
            Command::Keys(args) => keys::keys(args).await,
            Command::Keygen => keys::keygen(),
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
