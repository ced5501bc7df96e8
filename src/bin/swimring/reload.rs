//! SIGHUP: read the configuration again and apply what may change while the agent runs —
//! tags, tasks, the log level, the keys and the leave timeout. A reload that would change
//! anything else is refused whole, and the agent runs on as it was.

use swimring::Mesh;
use swimring::wire::Key;

use crate::logging::Logging;
use crate::settings::{AgentArgs, Settings};

/// The settings a running agent cannot change, named as the config file spells them, that
/// differ between `old` and `new`.
fn fixed_changes(old: &Settings, new: &Settings) -> Vec<&'static str> {
    let differs = [
        ("name", old.name != new.name),
        ("bind", old.bind != new.bind),
        ("advertise", old.advertise != new.advertise),
        ("seeds", old.seeds != new.seeds),
        ("cluster", old.cluster != new.cluster),
        ("profile", old.preset != new.preset),
        ("protocol", old.protocol != new.protocol),
        ("control", old.control != new.control),
        ("control_token_file", old.control_token != new.control_token),
        ("metrics", old.metrics != new.metrics),
        ("events", old.events != new.events),
        ("handlers", old.handlers != new.handlers),
        ("join_wait", old.join_wait != new.join_wait),
        (
            "placement (owner_tag, bounded_load, vnodes)",
            old.placement != new.placement,
        ),
        (
            "insecure_plaintext",
            old.insecure_plaintext != new.insecure_plaintext,
        ),
        (
            "encryption on or off",
            old.keys.is_empty() != new.keys.is_empty(),
        ),
    ];
    differs
        .into_iter()
        .filter(|(_, d)| *d)
        .map(|(n, _)| n)
        .collect()
}

/// Reloads on SIGHUP; logs what changed, or why nothing did.
pub async fn on_hangup(args: &AgentArgs, current: &mut Settings, mesh: &Mesh, logging: &Logging) {
    tracing::info!("SIGHUP: reloading the configuration");
    let new = match args.clone().resolve() {
        Ok(new) => new,
        Err(e) => return tracing::warn!(error = %e, "reload refused; running on unchanged"),
    };
    let fixed = fixed_changes(current, &new);
    if !fixed.is_empty() {
        return tracing::warn!(settings = ?fixed,
            "reload refused: these cannot change while the agent runs (restart it); running on unchanged");
    }
    let mut changed = Vec::new();
    if new.tags != current.tags {
        let tags = new.tags.clone();
        match mesh.update_tags(move |t| *t = tags).await {
            Ok(()) => changed.push("tags"),
            Err(e) => tracing::warn!(error = %e, "reload: tags not changed"),
        }
    }
    if new.tasks != current.tasks {
        let added: Vec<&String> = new
            .tasks
            .iter()
            .filter(|t| !current.tasks.contains(t))
            .collect();
        let removed: Vec<&String> = current
            .tasks
            .iter()
            .filter(|t| !new.tasks.contains(t))
            .collect();
        tracing::info!(
            added = added.len(),
            removed = removed.len(),
            "reload: tasks"
        );
        let ok = mesh.add_tasks(added).await.is_ok() && mesh.remove_tasks(removed).await.is_ok();
        if ok {
            changed.push("tasks");
        }
    }
    if new.log_level != current.log_level {
        match logging.set_level(new.log_level) {
            Ok(()) => changed.push("log_level"),
            Err(e) => tracing::warn!(error = %e, "reload: log level not changed"),
        }
    }
    if new.keys != current.keys {
        match apply_keys(mesh, &new.keys) {
            Ok(()) => changed.push("keys"),
            Err(e) => tracing::warn!(error = %e, "reload: keys only partly changed"),
        }
    }
    if new.leave_timeout != current.leave_timeout {
        changed.push("leave_timeout");
    }
    tracing::info!(changed = ?changed, "configuration reloaded");
    *current = new;
}

/// Makes the mesh hold exactly `keys`, sealing with the first: installs the new ones, uses
/// the new primary, then removes the ones no longer listed (the order of a rotation).
fn apply_keys(mesh: &Mesh, keys: &[Key]) -> Result<(), swimring::Error> {
    let held = mesh.keys();
    for k in keys.iter().filter(|k| !held.contains(&k.id())) {
        mesh.install_key(k.clone())?;
    }
    if let Some(primary) = keys.first()
        && held.first() != Some(&primary.id())
    {
        mesh.use_key(primary.id())?;
    }
    for id in held.iter().filter(|id| keys.iter().all(|k| k.id() != **id)) {
        mesh.remove_key(*id)?;
    }
    Ok(())
}
