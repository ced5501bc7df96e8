//! Work placement on real sockets: 5 nodes share 1,000 tasks, one is killed, and exactly its
//! tasks move, to the survivors, whose "acquired" changes together cover exactly them.

mod runtime_util;

use std::collections::{BTreeMap, BTreeSet};

use runtime_util::{bound, converged, init_tracing, lo, owned_keys, sees, start, wait_for};
use swimring::{Mesh, State, TaskChanges};

const TASKS: usize = 1000;

fn task_keys() -> Vec<String> {
    (0..TASKS).map(|i| format!("task-{i:04}")).collect()
}

/// Who owns each task according to the union of the nodes' own claims.
fn claims(nodes: &[&Mesh]) -> BTreeMap<String, Vec<String>> {
    let mut owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in nodes {
        for t in owned_keys(n) {
            owners.entry(t).or_default().push(n.name().to_owned());
        }
    }
    owners
}

fn drain(sub: &mut TaskChanges) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut acquired, mut released) = (BTreeSet::new(), BTreeSet::new());
    while let Ok(Some(c)) = sub.try_recv() {
        acquired.extend(c.acquired);
        released.extend(c.released);
    }
    (acquired, released)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_node_moves_exactly_its_tasks_to_the_survivors() {
    init_tracing();
    let seed = start("p0", lo(40, 1), &[]).await;
    seed.add_tasks(task_keys()).await.unwrap();
    let mut nodes = vec![seed.clone()];
    for i in 1..5u8 {
        let n = start(&format!("p{i}"), lo(40, i + 1), &[seed.local_addr()]).await;
        n.add_tasks(task_keys()).await.unwrap();
        nodes.push(n);
    }
    let cfg = seed.config().clone();
    let limit = bound(&cfg, 5);
    wait_for("5 nodes converge", limit, || converged(&nodes)).await;
    let all: Vec<&Mesh> = nodes.iter().collect();
    wait_for("every task has exactly one owner", limit, || {
        let c = claims(&all);
        c.len() == TASKS && c.values().all(|o| o.len() == 1)
    })
    .await;
    wait_for("every ring checksum agrees", limit, || {
        nodes
            .iter()
            .all(|n| n.ring_checksum() == seed.ring_checksum())
    })
    .await;
    for key in ["task-0001", "anything"] {
        let owner = seed.owner(key).unwrap();
        assert!(
            nodes
                .iter()
                .all(|n| n.owner(key).as_deref() == Some(owner.as_str()))
        );
        let replicas = seed.owners(key, 3);
        assert_eq!(replicas.len(), 3);
        assert_eq!(replicas[0], owner);
        assert_eq!(replicas.iter().collect::<BTreeSet<_>>().len(), 3);
    }

    let victim = nodes.remove(2);
    let victim_tasks: BTreeSet<String> = owned_keys(&victim).into_iter().collect();
    assert!(
        !victim_tasks.is_empty(),
        "1,000 tasks over 5 nodes give each some"
    );
    let before: Vec<BTreeSet<String>> = nodes
        .iter()
        .map(|n| owned_keys(n).into_iter().collect())
        .collect();
    let mut subs: Vec<TaskChanges> = nodes.iter().map(Mesh::task_changes).collect();
    victim.shutdown().await;

    wait_for("every survivor marks the victim dead", limit, || {
        nodes.iter().all(|n| sees(n, victim.name(), State::Dead))
    })
    .await;
    let survivors: Vec<&Mesh> = nodes.iter().collect();
    wait_for("the survivors own every task once", limit, || {
        let c = claims(&survivors);
        c.len() == TASKS && c.values().all(|o| o.len() == 1)
    })
    .await;

    let checksum = nodes[0].ring_checksum();
    assert!(nodes.iter().all(|n| n.ring_checksum() == checksum));
    let mut acquired_all = BTreeSet::new();
    for ((n, sub), before) in nodes.iter().zip(&mut subs).zip(&before) {
        let (acquired, released) = drain(sub);
        assert!(released.is_empty(), "{} lost tasks to a death", n.name());
        let now: BTreeSet<String> = owned_keys(n).into_iter().collect();
        let gained: BTreeSet<String> = now.difference(before).cloned().collect();
        assert_eq!(acquired, gained, "{}: events match the change", n.name());
        assert!(before.is_subset(&now), "{} kept all its tasks", n.name());
        assert!(acquired_all.is_disjoint(&acquired), "a task acquired twice");
        acquired_all.extend(acquired);
    }
    assert_eq!(
        acquired_all, victim_tasks,
        "exactly the dead node's tasks moved"
    );
    for n in &nodes {
        n.shutdown().await;
    }
}
