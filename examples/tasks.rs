//! Handing out work with the task API.
//!
//! Four workers share twelve jobs. Each worker learns which jobs it owns from
//! `task_changes()`, "runs" them, and when one worker dies the survivors pick up exactly its
//! jobs. Run with `cargo run --example tasks`.

use std::time::Duration;

use swimring::{Mesh, Preset, State, TaskChanges};

/// Prints what one worker was told to start and stop, as it is told.
fn report(name: &str, changes: &mut TaskChanges) {
    while let Ok(Some(change)) = changes.try_recv() {
        if !change.acquired.is_empty() {
            println!("{name}: start {}", change.acquired.join(", "));
        }
        if !change.released.is_empty() {
            println!("{name}: stop  {}", change.released.join(", "));
        }
    }
}

/// Waits up to `limit` for `cond`, checking every 20 ms.
async fn wait_until(limit: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

#[tokio::main]
async fn main() -> Result<(), swimring::Error> {
    let jobs: Vec<String> = (1..=12).map(|i| format!("job-{i:02}")).collect();

    // Every worker registers the same jobs; the ring decides who runs which. A subscription
    // made with `start_subscribed` sees the very first assignment too.
    let mut workers = Vec::new();
    let mut seed = None;
    for i in 1..=4 {
        let (mesh, _events, changes) = Mesh::builder()
            .name(format!("worker-{i}"))
            .bind("127.0.0.1:0".parse().unwrap())
            .preset(Preset::Local)
            .seeds(seed.iter().cloned())
            .tasks(jobs.clone())
            .start_subscribed()
            .await?;
        seed.get_or_insert_with(|| mesh.local_addr().to_string());
        workers.push((mesh, changes));
    }

    // Wait until the four agree on the ring (same checksum) and every job has one owner.
    let settled = |ws: &[(Mesh, TaskChanges)]| {
        let sum = ws[0].0.ring_checksum();
        let owned: usize = ws.iter().map(|(m, _)| m.owned_tasks().len()).sum();
        ws.iter()
            .all(|(m, _)| m.ring_checksum() == sum && m.live_count() == ws.len())
            && owned == 12
    };
    assert!(wait_until(Duration::from_secs(30), || settled(&workers)).await);
    // While workers were still joining, jobs moved to each newcomer; those changes were
    // real (a worker would have started and stopped them). Here we just show where they are.
    for (mesh, changes) in &mut workers {
        while let Ok(Some(_)) = changes.try_recv() {}
        let jobs: Vec<String> = mesh
            .owned_tasks()
            .iter()
            .map(|t| format!("{} (token {})", t.key, t.token))
            .collect();
        println!("{} runs {}", mesh.name(), jobs.join(", "));
    }
    println!("owner of job-07: {:?}", workers[0].0.owner("job-07"));
    println!(
        "job-07 fails over to: {:?}",
        workers[0].0.owners("job-07", 3)
    );

    // worker-3 dies without a word. The others notice (suspect, then dead) and split its jobs.
    let (dead, _) = workers.remove(2);
    let lost: Vec<String> = dead.owned_tasks().into_iter().map(|t| t.key).collect();
    println!("\n{} dies, owning {lost:?}", dead.name());
    dead.shutdown().await;
    let gone = dead.name().to_owned();
    assert!(
        wait_until(Duration::from_secs(30), || {
            workers
                .iter()
                .all(|(m, _)| m.member(&gone).is_some_and(|x| x.state == State::Dead))
                && settled(&workers)
        })
        .await
    );
    for (mesh, changes) in &mut workers {
        report(mesh.name(), changes);
    }

    for (mesh, _) in &workers {
        mesh.leave(Duration::from_secs(2)).await?;
    }
    Ok(())
}
