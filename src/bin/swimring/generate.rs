//! `swimring generate`: shell completions and the man page, from the same clap definitions
//! the parser uses, so they never drift from the flags.

use clap::{Args, CommandFactory, Subcommand};
use clap_complete::Shell;

/// `swimring generate`.
#[derive(Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Print a completion script for a shell (e.g. `swimring generate completions bash >
    /// /etc/bash_completion.d/swimring`).
    Completions {
        /// The shell.
        shell: Shell,
    },
    /// Print the man page, swimring(1), in roff (e.g. `swimring generate man | man -l -`).
    Man,
}

pub fn generate(args: GenerateArgs) -> Result<(), String> {
    let mut cmd = crate::Cli::command();
    let mut out = std::io::stdout().lock();
    match args.what {
        What::Completions { shell } => {
            clap_complete::generate(shell, &mut cmd, "swimring", &mut out);
            Ok(())
        }
        What::Man => clap_mangen::Man::new(cmd)
            .render(&mut out)
            .map_err(|e| format!("cannot write the man page: {e}")),
    }
}
