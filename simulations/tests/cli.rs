//! The command line: bad input gives one clear error line and a non-zero exit; a good run
//! writes its outputs; --check-determinism and a sweep failure set the exit code.

use std::process::Command;

fn sim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_swimring-sim"))
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_flags_and_files_give_one_error_line() {
    let dir = std::env::temp_dir().join(format!("swimring-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\nduration_s = [\n").unwrap();
    let bad = bad.to_str().unwrap().to_owned();
    for args in [
        vec!["--nodes", "many"],
        vec!["--frobnicate"],
        vec!["--scenario", "no-such-scenario"],
        vec!["--scenario", &bad],
        vec!["--scenario", "/nonexistent/x.toml"],
        vec!["--loss", "1.5"],
        vec!["--latency", "pareto:1"],
        vec!["--probe-interval-ms", "100", "--probe-timeout-ms", "500"],
        vec!["--crash-evidence", "maybe"],
        vec!["--scenario", "kill-one", "--pause-s", "5"],
        vec!["--scenario", "pause-one", "--pause-s", "-1"],
    ] {
        let (code, _, err) = sim(&args);
        assert_ne!(code, 0, "{args:?}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_run_writes_outputs_and_checks_determinism() {
    let dir = std::env::temp_dir().join(format!("swimring-cli-run-{}", std::process::id()));
    let d = dir.to_str().unwrap();
    let (code, out, err) = sim(&[
        "--scenario",
        "kill-one",
        "--nodes",
        "8",
        "--preset",
        "local",
        "--duration-s",
        "70",
        "--out",
        d,
        "--check-determinism",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("determinism: ok"));
    assert!(
        out.contains("detection: 1 crashed, 0 not declared dead by all; first p50 "),
        "{out}"
    );
    assert!(dir.join("summary.json").exists() && dir.join("convergence.svg").exists());
    let (code, _, err) = sim(&[
        "--sweep",
        "3",
        "--bug",
        "drop-own-refutation",
        "--quiet",
        "--out",
        d,
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("reproduce: cargo run --release -p swimring-sim -- --scenario sweep --seed")
    );
    std::fs::remove_dir_all(dir).ok();
}
