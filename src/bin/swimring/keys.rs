//! `swimring keygen` and `swimring keys`: make a key, and rotate the keys of a running agent.
//! Also reads keys from a key file or `SWIMRING_KEY` for `swimring agent`.

use std::io::Read as _;
use std::path::Path;

use clap::{Args, Subcommand};
use swimring::control::{Request, Response, SecretString};
use swimring::wire::Key;

use crate::inspect::{Target, ask, print_json, unexpected};

/// `swimring keys`.
#[derive(Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    op: KeysOp,
}

#[derive(Subcommand)]
enum KeysOp {
    /// List the agent's key ids, the primary (the one that seals) first.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Install a key that opens packets (base64; `-` reads it from stdin, which keeps it off
    /// the command line other users can see). Step 1 of a rotation, on every agent.
    Install {
        /// The key, or `-`.
        key: String,
        #[command(flatten)]
        target: Target,
    },
    /// Seal with an installed key from now on. Step 2, once every agent has installed it.
    Use {
        /// The key id (8 hex digits, as `keys list` shows).
        key_id: String,
        #[command(flatten)]
        target: Target,
    },
    /// Remove a key that is not the primary. Step 3, once every agent uses the new key.
    Remove {
        /// The key id.
        key_id: String,
        #[command(flatten)]
        target: Target,
    },
}

/// A new random key in base64, from the OS-seeded cryptographic RNG.
pub fn keygen() -> Result<(), String> {
    println!("{}", Key::from_bytes(rand::random()).to_base64());
    Ok(())
}

/// Parses keys, one per item; `what(n)` names item `n` in errors (which never repeat a key).
fn parse_keys<'a>(
    items: impl Iterator<Item = &'a str>,
    what: impl Fn(usize) -> String,
) -> Result<Vec<Key>, String> {
    items
        .enumerate()
        .map(|(i, s)| (i, s.trim()))
        .filter(|(_, s)| !s.is_empty() && !s.starts_with('#'))
        .map(|(i, s)| Key::from_base64(s).map_err(|e| format!("{}: {e}", what(i + 1))))
        .collect()
}

/// Keys from a file: one base64 key per line, the first the primary; blank lines and
/// `#` comments skipped.
pub fn read_key_file(path: &Path) -> Result<Vec<Key>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read key file {}: {e}", path.display()))?;
    let keys = parse_keys(text.lines(), |n| {
        format!("key file {} line {n}", path.display())
    })?;
    if keys.is_empty() {
        return Err(format!("key file {} holds no key", path.display()));
    }
    Ok(keys)
}

/// Keys from `SWIMRING_KEY`: comma-separated base64 keys, the first the primary.
pub fn parse_key_env(value: &str) -> Result<Vec<Key>, String> {
    parse_keys(value.split(','), |n| format!("SWIMRING_KEY key {n}"))
}

pub async fn keys(args: KeysArgs) -> Result<(), String> {
    let (req, target) = match args.op {
        KeysOp::List { target } => (Request::ListKeys, target),
        KeysOp::Install { key, target } if key == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read the key from stdin: {e}"))?;
            let key = text.trim().to_owned();
            (
                Request::InstallKey {
                    key: SecretString(key),
                },
                target,
            )
        }
        KeysOp::Install { key, target } => (
            Request::InstallKey {
                key: SecretString(key),
            },
            target,
        ),
        KeysOp::Use { key_id, target } => (Request::UseKey { id: key_id }, target),
        KeysOp::Remove { key_id, target } => (Request::RemoveKey { id: key_id }, target),
    };
    let resp = ask(&target, req).await?;
    if target.json {
        return print_json(&resp);
    }
    let Response::Keys { ids } = &resp else {
        return Err(unexpected(&resp));
    };
    if ids.is_empty() {
        println!("no keys: the agent runs without encryption");
    }
    for (i, id) in ids.iter().enumerate() {
        println!("{id}{}", if i == 0 { "  (primary)" } else { "" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lists_parse_and_errors_never_repeat_a_key() {
        let (a, b) = (
            Key::from_bytes([1; 32]).to_base64(),
            Key::from_bytes([2; 32]).to_base64(),
        );
        let keys = parse_key_env(&format!("{a}, {b},")).unwrap();
        assert_eq!(keys, [Key::from_bytes([1; 32]), Key::from_bytes([2; 32])]);
        let bad = &a[..20];
        let err = parse_key_env(&format!("{a},{bad}")).unwrap_err();
        assert!(err.contains("SWIMRING_KEY key 2"), "{err}");
        assert!(!err.contains(bad), "{err}");

        let dir = std::env::temp_dir().join(format!("swimring-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("keys");
        std::fs::write(&file, format!("# primary\n{b}\n\n{a}\n")).unwrap();
        let keys = read_key_file(&file).unwrap();
        assert_eq!(keys[0], Key::from_bytes([2; 32]));
        std::fs::write(&file, "# nothing\n").unwrap();
        assert!(read_key_file(&file).unwrap_err().contains("holds no key"));
        std::fs::write(&file, format!("{a}\nnot-a-key\n")).unwrap();
        assert!(read_key_file(&file).unwrap_err().contains("line 2"));
    }
}
