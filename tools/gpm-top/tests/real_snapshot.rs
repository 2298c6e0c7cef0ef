//! The contract with gpm: a snapshot of a real runtime, serialised as the probes endpoint
//! does (`serde_json::to_string(&handle.probes())`), parses into gpm-top's types, and the
//! hand-written fixture `tests/fixtures/probes.json` uses only keys the real form has. Keys
//! the snapshot gains later are not required in the fixture: gpm-top ignores them.

use gpm_top::probes::Probes;
use serde_json::Value;
use std::collections::BTreeSet;

/// Runs some work on a 2-worker runtime and returns two snapshots' JSON, a little apart.
fn real_snapshots() -> (String, String) {
    let rt = gpm::Runtime::builder().worker_threads(2).build().unwrap();
    let handle = rt.handle().clone();
    let first = serde_json::to_string(&handle.probes()).unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..200u64)
            .map(|i| {
                gpm::spawn(async move {
                    gpm::task::yield_now().await;
                    i
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = serde_json::to_string(&handle.probes()).unwrap();
    (first, second)
}

/// Every key path of `value` (`a.b`, arrays as `[]`).
fn keys(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(path.clone());
                keys(v, &path, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                keys(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn a_real_snapshot_parses_and_gives_rates() {
    let (first, second) = real_snapshots();
    let old = Probes::from_json(first.as_bytes()).expect("first snapshot parses");
    let new = Probes::from_json(second.as_bytes()).expect("second snapshot parses");
    assert_eq!(new.processors.len(), 2);
    assert!(new.polls >= 200, "polls {}", new.polls);
    assert!(
        new.little_tasks.is_some(),
        "the second snapshot has Little's law"
    );
    let rates = gpm_top::app::Rates::between(&old, &new).expect("rates");
    assert!(rates.polls > 0.0);
}

#[test]
fn the_fixture_uses_only_real_keys() {
    let (_, real) = real_snapshots();
    let mut real_keys = BTreeSet::new();
    keys(&serde_json::from_str(&real).unwrap(), "", &mut real_keys);
    let mut fixture_keys = BTreeSet::new();
    keys(
        &serde_json::from_str(include_str!("fixtures/probes.json")).unwrap(),
        "",
        &mut fixture_keys,
    );
    // The fixture has a knee; a short real run may not.
    for key in ["knee.lambda", "knee.l", "knee.curvature"] {
        real_keys.insert(key.to_owned());
    }
    let extra: Vec<_> = fixture_keys.difference(&real_keys).collect();
    assert!(
        extra.is_empty(),
        "fixture keys not in the real snapshot: {extra:?}"
    );
}

#[test]
#[ignore = "prints a real snapshot, to refresh the fixture by hand"]
fn print_a_real_snapshot() {
    let (_, real) = real_snapshots();
    let value: Value = serde_json::from_str(&real).unwrap();
    println!("{}", serde_json::to_string_pretty(&value).unwrap());
}

/// The real endpoint (`Handle::serve_probes`, feature `probes-server`) in front of a loaded
/// runtime: two fetches give a P table with rates. The 10 ms between the two fetches only
/// makes the snapshots' uptimes differ (rates divide by it); nothing waits on it.
#[test]
fn two_fetches_from_a_live_runtime_give_rates() {
    let rt = gpm::Runtime::builder().worker_threads(2).build().unwrap();
    let server = rt.handle().serve_probes("127.0.0.1:0").unwrap();
    let target = server.local_addr().to_string();
    let mut app = gpm_top::app::App::new(target.clone(), std::time::Duration::from_secs(1));
    app.on_fetch(gpm_top::fetch(&target, Default::default()));
    rt.block_on(async {
        let tasks: Vec<_> = (0..500u64).map(|i| gpm::spawn(async move { i })).collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(10));
    app.on_fetch(gpm_top::fetch(&target, Default::default()));
    assert_eq!(app.error, None);
    let rates = app.rates.as_ref().expect("rates from two fetches");
    assert!(rates.polls > 0.0 && rates.spawns > 0.0, "{rates:?}");
    assert_eq!(rates.processors.len(), 2);
    assert_eq!(app.row_order().len(), 2);
    drop(server);
}
