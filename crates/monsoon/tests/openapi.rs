//! The OpenAPI document against the real server: schemathesis (from PyPI) generates requests
//! from it, bounded and seeded, and checks there is no 5xx, no undocumented status, and no
//! response that violates the schema.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::Server;

#[test]
fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::ingest_clip(tmp.path(), "film", 2, "320x180");
    let server = Server::start(&data);
    let out = Command::new("python3")
        // The console script's entry point, called through python3 so PATH does not matter.
        .args([
            "-c",
            "import sys; from schemathesis.cli import schemathesis; sys.argv[0] = 'schemathesis'; schemathesis()",
            "run",
        ])
        .arg(format!("{}/api/v1/openapi.json", server.url))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "25",
            "--seed",
            "1",
        ])
        .env("NO_COLOR", "1")
        .output()
        .expect("python3 runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("No module named"),
        "schemathesis is not installed: `pip install schemathesis` (scripts/install-deps.sh does)"
    );
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("passed"), "{report}");
}
