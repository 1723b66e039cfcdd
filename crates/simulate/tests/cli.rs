//! The `monsoon-simulate` program refuses what it cannot run, by name. (Its end-to-end run
//! against a real server is `crates/monsoon/tests/simulate.rs`, through `monsoon simulate`:
//! this test also makes `cargo test --workspace` build the program that one runs.)

#![allow(clippy::unwrap_used)]

use std::process::Command;

const SIMULATE: &str = env!("CARGO_BIN_EXE_monsoon-simulate");

#[test]
fn a_missing_scenario_and_a_bad_strategy_are_named() {
    let out = Command::new(SIMULATE)
        .args(["simulate", "--scenario", "/nonexistent.toml", "--film", "f"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent.toml"), "{err}");

    let out = Command::new(SIMULATE)
        .args(["inflate", "--film", "f", "--strategy", "everything"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("everything"), "{err}");
}
