//! The library side of operating a mesh: its metrics in an application's own registry, a
//! join that counts only readable answers, and a forced leave.

mod runtime_util;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use runtime_util::{bound, builder, lo, start, wait_for};
use swimring::proto::ForceLeaveError;
use swimring::wire::Key;
use swimring::{Error, Preset, State};

#[tokio::test]
async fn the_mesh_metrics_sit_beside_the_applications_own() {
    let a = start("a", lo(90, 1), &[]).await;
    let b = start("b", lo(90, 2), &[a.local_addr()]).await;
    let limit = bound(&Preset::Local.config(), 2);
    let mut registry = Registry::default();
    let mine: Counter = Counter::default();
    registry.register(
        "app_requests",
        "The application's own counter.",
        mine.clone(),
    );
    mine.inc();
    swimring::metrics::register(&mut registry, &b);
    let scrape = || {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
    };
    let gauge = |s: &prometheus_parse::Scrape, name: &str, state: Option<&str>| {
        s.samples.iter().find_map(|x| {
            let labelled = state.is_none_or(|st| x.labels.get("state") == Some(st));
            match x.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Counter(v)
                    if x.metric == name && labelled =>
                {
                    Some(v)
                }
                _ => None,
            }
        })
    };
    wait_for("b's registry shows two alive", limit, || {
        gauge(&scrape(), "swimring_members", Some("alive")) == Some(2.0)
    })
    .await;
    let s = scrape();
    assert_eq!(gauge(&s, "app_requests_total", None), Some(1.0));
    // Every counter the mesh lists, under its own name and help.
    for c in b.stats().counters() {
        let name = format!("swimring_{}_total", c.name);
        assert!(gauge(&s, &name, None).is_some(), "{name}");
        assert_eq!(
            s.docs.get(&name).map(String::as_str),
            Some(c.help),
            "{name}"
        );
    }
    assert_eq!(gauge(&s, "swimring_members", Some("dead")), Some(0.0));
    // Forcing out a live or unknown member is refused and changes nothing.
    assert!(matches!(
        b.force_leave("a", false).await,
        Err(Error::ForceLeave(ForceLeaveError::Live { .. }))
    ));
    assert!(matches!(
        b.force_leave("zz", false).await,
        Err(Error::ForceLeave(ForceLeaveError::Unknown(_)))
    ));
    assert!(runtime_util::sees(&b, "a", State::Alive));
    assert!(b.is_running());
    b.shutdown().await;
    assert!(!b.is_running());
    a.shutdown().await;
}

#[tokio::test]
async fn a_seed_with_another_key_does_not_count_as_joined() {
    let (k1, k2) = (Key::from_bytes([1; 32]), Key::from_bytes([2; 32]));
    let a = builder("a", lo(90, 11), &[])
        .keys([k1])
        .start()
        .await
        .unwrap();
    let b = builder("b", lo(90, 12), &[])
        .keys([k2])
        .start()
        .await
        .unwrap();
    assert_eq!(b.join([a.local_addr().to_string()]).await.unwrap(), 0);
    assert_eq!(b.live_count(), 1);
    a.shutdown().await;
    b.shutdown().await;
}
