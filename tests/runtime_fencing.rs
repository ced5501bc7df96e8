//! Fencing on real sockets: every node writes each task it owns to a small compare-and-set
//! store with the task's token, an owner is killed while its worker keeps writing (a stale
//! owner that does not know it was declared dead), and a node joins and takes tasks over while
//! their old owners still write. The store must take the new owners' writes and refuse every
//! write from an owner that a later owner has already written over.

mod runtime_util;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runtime_util::{bound, converged, init_tracing, lo, sees, start, wait_for};
use swimring::{FencingToken, Mesh, OwnedTask, State};

const TASKS: usize = 16;

fn task_keys() -> Vec<String> {
    (0..TASKS).map(|i| format!("job-{i:02}")).collect()
}

/// One write the store was asked to make.
#[derive(Debug, Clone)]
struct Write {
    task: String,
    writer: String,
    token: FencingToken,
    accepted: bool,
}

/// The downstream store: per task, the highest token it accepted. A write with a lower token
/// is refused; an equal one is the same owner's tenure, and accepted.
#[derive(Default)]
struct Store {
    highest: BTreeMap<String, FencingToken>,
    log: Vec<Write>,
}

impl Store {
    fn write(&mut self, task: &str, writer: &str, token: FencingToken) {
        let accepted = self.highest.get(task).is_none_or(|&h| token >= h);
        if accepted {
            self.highest.insert(task.to_owned(), token);
        }
        self.log.push(Write {
            task: task.to_owned(),
            writer: writer.to_owned(),
            token,
            accepted,
        });
    }

    /// The last writer the store accepted for each task.
    fn last_accepted(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for w in self.log.iter().filter(|w| w.accepted) {
            out.insert(w.task.clone(), w.writer.clone());
        }
        out
    }
}

type Shared = Arc<Mutex<Store>>;

/// A worker: every few milliseconds it writes each task in `tasks()` with its token, the way
/// a job would write its progress.
fn worker(
    store: Shared,
    writer: String,
    mut tasks: impl FnMut() -> Vec<OwnedTask> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            for t in tasks() {
                store.lock().unwrap().write(&t.key, &writer, t.token);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
}

fn live_worker(store: &Shared, mesh: &Mesh) -> tokio::task::JoinHandle<()> {
    let m = mesh.clone();
    worker(Arc::clone(store), mesh.name().to_owned(), move || {
        m.owned_tasks()
    })
}

/// Whether every task's last accepted write came from the owner all of `nodes` agree on, one
/// of them (not a member they have yet to drop from their rings).
fn owners_have_written(store: &Shared, nodes: &[Mesh]) -> bool {
    let last = store.lock().unwrap().last_accepted();
    let first = &nodes[0];
    let running = |name: &String| nodes.iter().any(|n| n.name() == name);
    nodes
        .iter()
        .all(|n| n.ring_checksum() == first.ring_checksum())
        && task_keys().iter().all(|k| {
            let owner = first.owner(k);
            owner.as_ref().is_some_and(running) && last.get(k) == owner.as_ref()
        })
}

/// Every task's owner and token now, as `nodes` hold them.
fn snapshot(nodes: &[Mesh]) -> Vec<(String, OwnedTask)> {
    nodes
        .iter()
        .flat_map(|n| {
            n.owned_tasks()
                .into_iter()
                .map(|t| (n.name().to_owned(), t))
        })
        .collect()
}

/// Where, at or after log index `from`, `successor` first wrote `task` and was accepted.
fn takeover(store: &Store, from: usize, task: &str, successor: &str) -> Option<usize> {
    let at = store.log[from..]
        .iter()
        .position(|w| w.task == task && w.accepted && w.writer == successor)?;
    Some(from + at)
}

/// Whether some task that moved since `before` drew a stale write after its successor's
/// first: only then can [`check_successors`] see the store refuse one.
fn stale_refused_after_takeover(
    store: &Shared,
    from: usize,
    before: &[(String, OwnedTask)],
    now: &Mesh,
) -> bool {
    let store = store.lock().unwrap();
    before.iter().any(|(owner, t)| {
        let successor = now.owner(&t.key).unwrap_or_default();
        let stale = format!("stale {owner}");
        &successor != owner
            && takeover(&store, from, &t.key, &successor).is_some_and(|first| {
                store.log[first..]
                    .iter()
                    .any(|w| w.task == t.key && w.writer == stale)
            })
    })
}

/// Workers that never learn they lost a task: they write `before` forever, each task under
/// the name `stale <owner>` with the token its owner held then.
fn stale_workers(store: &Shared, before: &[(String, OwnedTask)]) -> tokio::task::JoinHandle<()> {
    let store = Arc::clone(store);
    let before = before.to_vec();
    tokio::spawn(async move {
        loop {
            for (owner, t) in &before {
                store
                    .lock()
                    .unwrap()
                    .write(&t.key, &format!("stale {owner}"), t.token);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
}

/// After an event that began at log index `from`: each task that changed owner since
/// `before` was written by its successor at a higher epoch than it was held by before, and
/// from then on every stale write was refused. Returns how many were.
fn check_successors(
    store: &Store,
    from: usize,
    before: &[(String, OwnedTask)],
    now: &Mesh,
) -> usize {
    let mut refused = 0;
    for (owner, t) in before {
        let successor = now.owner(&t.key).unwrap();
        if &successor == owner {
            continue;
        }
        let first = takeover(store, from, &t.key, &successor)
            .unwrap_or_else(|| panic!("{} was never written by {successor}", t.key));
        let taken = &store.log[first];
        assert!(
            taken.token.epoch > t.token.epoch,
            "{}: {successor} took over from {owner} at {} without raising {}",
            t.key,
            taken.token,
            t.token
        );
        let stale = format!("stale {owner}");
        for w in &store.log[first..] {
            if w.task == t.key && w.writer == stale {
                assert!(!w.accepted, "the store took a stale write: {w:?}");
                refused += 1;
            }
        }
    }
    refused
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_owner_is_refused_once_the_new_owner_wrote() {
    init_tracing();
    let seed = start("fx0", lo(42, 1), &[]).await;
    seed.add_tasks(task_keys()).await.unwrap();
    let mut nodes = vec![seed.clone()];
    for i in 1..4u8 {
        let n = start(&format!("fx{i}"), lo(42, i + 1), &[seed.local_addr()]).await;
        n.add_tasks(task_keys()).await.unwrap();
        nodes.push(n);
    }
    let cfg = seed.config().clone();
    let limit = bound(&cfg, 5);
    wait_for("4 nodes converge", limit, || converged(&nodes)).await;
    let store: Shared = Arc::default();
    let mut workers: Vec<_> = nodes.iter().map(|n| live_worker(&store, n)).collect();
    wait_for("every owner has written", limit, || {
        owners_have_written(&store, &nodes)
    })
    .await;

    // A crash: the busiest owner is killed, and its worker lives on with the tokens it held.
    let at = (0..nodes.len())
        .max_by_key(|&i| nodes[i].owned_tasks().len())
        .unwrap();
    let before = snapshot(&nodes);
    let from = store.lock().unwrap().log.len();
    let victim = nodes.remove(at);
    victim.shutdown().await;
    let stale = stale_workers(&store, &before);
    wait_for("the dead owner's successors have written", limit, || {
        nodes.iter().all(|n| sees(n, victim.name(), State::Dead))
            && owners_have_written(&store, &nodes)
            && stale_refused_after_takeover(&store, from, &before, &nodes[0])
    })
    .await;
    stale.abort();
    let refused = check_successors(&store.lock().unwrap(), from, &before, &nodes[0]);
    assert!(
        refused > 0,
        "the dead owner's worker kept writing and was refused"
    );

    // A join: a newcomer takes tasks over from owners whose workers do not stop.
    let before = snapshot(&nodes);
    let from = store.lock().unwrap().log.len();
    let stale = stale_workers(&store, &before);
    let newcomer = start("fx9", lo(42, 9), &[nodes[0].local_addr()]).await;
    newcomer.add_tasks(task_keys()).await.unwrap();
    workers.push(live_worker(&store, &newcomer));
    nodes.push(newcomer);
    wait_for("the newcomer has written what it took", limit, || {
        converged(&nodes)
            && owners_have_written(&store, &nodes)
            && stale_refused_after_takeover(&store, from, &before, &nodes[0])
    })
    .await;
    stale.abort();
    for w in workers {
        w.abort();
    }
    let refused = check_successors(&store.lock().unwrap(), from, &before, &nodes[0]);
    assert!(
        refused > 0,
        "the old owners' workers kept writing and were refused"
    );
    for n in &nodes {
        n.shutdown().await;
    }
}
