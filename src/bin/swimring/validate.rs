//! `swimring validate`: the agent's settings checked as `swimring agent` would check them,
//! without binding anything or joining anyone.

use swimring::ring::RingConfig;
use swimring::wire::codec::encode_tags;

use crate::settings::{AgentArgs, Settings};

/// The checks `swimring agent` runs before it binds, on the resolved settings.
fn check(s: &Settings) -> Result<(), String> {
    let mut config = s.preset.config();
    s.protocol.apply(&mut config);
    config.label = s.cluster.clone();
    config.validate().map_err(|e| format!("protocol: {e}"))?;
    let meta = encode_tags(&s.tags).len();
    if meta > config.max_meta {
        return Err(format!(
            "meta: the tags take {meta} bytes, over max_meta ({} bytes)",
            config.max_meta
        ));
    }
    RingConfig {
        vnodes_per_member: s.placement.vnodes_per_member,
    }
    .validate()
    .map_err(|e| format!("vnodes: {e}"))?;
    // The runtime's rule (MeshBuilder::allow_plaintext): no key beyond loopback needs consent.
    let beyond = |ip: std::net::IpAddr| !ip.is_loopback();
    let exposed = beyond(s.bind.ip()) || s.advertise.is_some_and(|a| beyond(a.ip()));
    if s.keys.is_empty() && exposed && !s.insecure_plaintext {
        return Err(format!(
            "no key for an address beyond loopback ({}): give --key-file or SWIMRING_KEY, or --insecure-plaintext",
            s.advertise.unwrap_or(s.bind)
        ));
    }
    Ok(())
}

/// Resolves the settings (flags, environment, config file) and checks them; prints a summary.
pub async fn validate(args: AgentArgs) -> Result<(), String> {
    let s = args.resolve()?;
    check(&s)?;
    // The control endpoint's rule is the one `Listener::bind` applies.
    let control = s
        .control
        .resolve()
        .await
        .map_err(|e| format!("control: {e}"))?;
    if s.control_token.is_none() && control.iter().any(|a| !a.ip().is_loopback()) {
        return Err(format!(
            "control: {} is beyond loopback: give --control-token-file",
            s.control
        ));
    }
    println!(
        "valid: bind {}, {} seeds, {} tags, {} tasks, {} keys, control {}, metrics {}",
        s.bind,
        s.seeds.len(),
        s.tags.len(),
        s.tasks.len(),
        s.keys.len(),
        s.control,
        s.metrics.map_or("off".to_owned(), |m| m.to_string()),
    );
    Ok(())
}
