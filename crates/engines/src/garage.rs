//! Garage (<https://garagehq.deuxfleurs.fr>), an S3-compatible object store, started for real
//! on 127.0.0.1: the S3 media store's conformance suite runs against it.
//!
//! [`Garage::start`] writes a configuration of its own in a temporary directory (the keys of
//! Garage's configuration reference, `reference-manual/configuration` in its documentation),
//! starts `garage server`, and then administers it with the same binary's CLI, as an operator
//! would: it assigns the node a role in the cluster layout and applies it, creates a bucket
//! and a key allowed to read and write it. Answers that have to be read are asked for as JSON
//! (`garage json-api <endpoint>`, the admin API's request and response types in
//! `src/api/admin/api.rs` of Garage's repository), never scraped from the tables printed for
//! humans.
//!
//! [`Garage::start_cluster`] takes the same steps for several nodes: one `garage server` each
//! (a directory and ports of its own, one shared `rpc_secret`), connected to one another, a
//! role each in one layout, and the replication factor set to their number; [`Garage::kill_node`]
//! crashes one of them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::{Process, find_program, free_port, on_path, wait_until};

/// The region Garage's S3 API answers as (`s3_region`); a client must sign for it.
pub const REGION: &str = "garage";

/// The bucket [`Garage::start`] creates.
pub const BUCKET: &str = "monsoon-media";

/// How `garage` is installed when it is missing.
const PACKAGE: &str = "garage 2.5.0 (`cargo install garage --locked --version 2.5.0`)";

/// A running Garage of one or more nodes, with one bucket and one key that may read and
/// write it. Stopped (every server killed by its PID) and its directory removed when dropped.
pub struct Garage {
    // Fields drop in order: the servers are killed before their directory is removed.
    nodes: Vec<Node>,
    bucket: String,
    access_key_id: String,
    secret_access_key: String,
    _dir: tempfile::TempDir,
}

/// One `garage server` process with its configuration.
struct Node {
    process: Process,
    config: PathBuf,
    log: PathBuf,
    s3_port: u16,
    /// Killed by [`Garage::kill_node`] (or [`Garage::kill`]).
    killed: bool,
}

impl fmt::Debug for Garage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Garage")
            .field("endpoints", &self.endpoints())
            .field("bucket", &self.bucket)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The most nodes [`Garage::start_cluster`] starts on one machine (each a process with its own
/// ports and directory); production runs three (`deploy/garage.toml`).
pub const MAX_NODES: usize = 7;

impl Garage {
    /// Starts a single-node Garage (replication factor 1) with its layout applied, bucket
    /// [`BUCKET`] and a key allowed to read and write it. Fails, naming how to install it, if
    /// `garage` is neither on the `PATH` nor in `~/.cargo/bin`.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_cluster(1)
    }

    /// Starts a cluster of `n` nodes on 127.0.0.1 (1 to [`MAX_NODES`]), each with a directory
    /// and ports of its own and the same `rpc_secret`, and `replication_factor = n`: every
    /// object on every node, so a cluster of three keeps its read and write quorums (two of
    /// three, Garage's `consistency_mode = "consistent"`) with any one node down. The nodes
    /// are connected to the first (`ConnectClusterNodes`, what `garage node connect` calls),
    /// each is given a role in a zone of its own in one layout, and this returns once every
    /// node reports the cluster healthy (`GetClusterHealth`: all partitions with all their
    /// nodes up); then bucket [`BUCKET`] and its key are made, as for one node.
    pub fn start_cluster(n: usize) -> anyhow::Result<Self> {
        if !(1..=MAX_NODES).contains(&n) {
            bail!(
                "a Garage cluster of {n} nodes: start 1 to {MAX_NODES} (the replication factor \
                 is the number of nodes, and Garage needs at least one)"
            );
        }
        let program = garage_program()?;
        let dir = tempfile::Builder::new()
            .prefix("monsoon-garage-")
            .tempdir()
            .context("creating Garage's temporary directory")?;
        let secret = rpc_secret()?;
        let replication = u32::try_from(n)?;
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let node_dir = dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(&node_dir)
                .with_context(|| format!("creating {}", node_dir.display()))?;
            nodes.push(Node::start(&program, &node_dir, &secret, replication)?);
        }
        let first = &nodes[0];

        // Connect the others to the first (`<node id>@<rpc_public_addr>`, as `garage node id`
        // prints it); Garage then tells every node of every other.
        if n > 1 {
            let peers = nodes[1..]
                .iter()
                .map(|node| {
                    Ok(run(&program, node, &["node", "id", "-q"])?
                        .trim()
                        .to_owned())
                })
                .collect::<anyhow::Result<Vec<String>>>()?;
            let answer = admin_json(&program, first, "ConnectClusterNodes", Some(json!(peers)))?;
            let failed: Vec<&Value> = answer
                .as_array()
                .map(|results| {
                    results
                        .iter()
                        .filter(|r| r.get("success").and_then(Value::as_bool) != Some(true))
                        .collect()
                })
                .unwrap_or_default();
            if !failed.is_empty() || answer.as_array().map(Vec::len) != Some(n - 1) {
                bail!("garage json-api ConnectClusterNodes {peers:?} failed: {answer}");
            }
            wait_until(
                "the Garage nodes to see one another",
                Duration::from_secs(30),
                &first.log,
                || {
                    admin_json(&program, first, "GetClusterStatus", None)
                        .ok()
                        .and_then(|status| node_ids(&status).ok())
                        .is_some_and(|ids| ids.len() == n)
                },
            )?;
        }

        // The layout: every node a role, in a zone of its own (Garage's CLI: `layout assign`,
        // then `layout apply` with the next version number, 1 on a new cluster).
        let status = admin_json(&program, first, "GetClusterStatus", None)?;
        let ids = node_ids(&status)?;
        if ids.len() != n {
            bail!(
                "garage json-api GetClusterStatus named {} nodes, not {n}: {status}",
                ids.len()
            );
        }
        for (zone, id) in ids.iter().enumerate() {
            let zone = format!("dc{}", zone + 1);
            run(
                &program,
                first,
                &["layout", "assign", "-z", &zone, "-c", "1G", id],
            )?;
        }
        run(&program, first, &["layout", "apply", "--version", "1"])?;
        for node in &nodes {
            wait_until(
                "the Garage cluster to be healthy",
                Duration::from_secs(60),
                &node.log,
                || {
                    admin_json(&program, node, "GetClusterHealth", None)
                        .is_ok_and(|health| is_healthy(&health))
                },
            )?;
        }

        let bucket = admin_json(
            &program,
            first,
            "CreateBucket",
            Some(json!({ "globalAlias": BUCKET })),
        )?;
        let bucket_id = string_field(&bucket, "id", "CreateBucket")?;
        let key = admin_json(
            &program,
            first,
            "CreateKey",
            Some(json!({ "name": "monsoon" })),
        )?;
        let access_key_id = string_field(&key, "accessKeyId", "CreateKey")?;
        let secret_access_key = string_field(&key, "secretAccessKey", "CreateKey")?;
        admin_json(
            &program,
            first,
            "AllowBucketKey",
            Some(json!({
                "bucketId": bucket_id,
                "accessKeyId": access_key_id,
                "permissions": { "read": true, "write": true, "owner": false },
            })),
        )?;

        Ok(Self {
            nodes,
            bucket: BUCKET.to_owned(),
            access_key_id,
            secret_access_key,
            _dir: dir,
        })
    }

    /// The S3 API's URL of the first node, `http://127.0.0.1:<port>` (every node answers for
    /// the whole cluster; [`Garage::endpoints`] names them all).
    pub fn endpoint(&self) -> String {
        self.nodes[0].endpoint()
    }

    /// The S3 API's URL of every node, in order (a killed node's too: it refuses connections).
    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.iter().map(Node::endpoint).collect()
    }

    /// How many nodes the cluster was started with.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The region requests must be signed for.
    pub fn region(&self) -> &str {
        REGION
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    pub fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    /// The first node's log (its standard output and error).
    pub fn log(&self) -> &Path {
        &self.nodes[0].log
    }

    /// The log of every node, in order.
    pub fn logs(&self) -> Vec<&Path> {
        self.nodes.iter().map(|node| node.log.as_path()).collect()
    }

    /// Kills every node at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }

    /// Kills node `i` (counted from 0) at once (SIGKILL), as a crash of its machine would;
    /// the others keep running. An error if there is no node `i` or it was already killed.
    pub fn kill_node(&mut self, i: usize) -> anyhow::Result<()> {
        let n = self.nodes.len();
        let node = self.nodes.get_mut(i).with_context(|| {
            format!("no Garage node {i}: this cluster has nodes 0 to {}", n - 1)
        })?;
        if node.killed {
            bail!("Garage node {i} was already killed");
        }
        node.kill();
        Ok(())
    }
}

/// Whether a `GetClusterHealth` answer says every partition has all its nodes up.
fn is_healthy(health: &Value) -> bool {
    let count = |field: &str| health.get(field).and_then(Value::as_u64);
    health.get("status").and_then(Value::as_str) == Some("healthy")
        && count("partitions").is_some_and(|p| p > 0)
        && count("partitionsAllOk") == count("partitions")
}

impl Node {
    /// Writes the configuration of a node in `dir` (a cluster of `replication` nodes) and
    /// starts it; returns once its RPC answers the CLI.
    fn start(
        program: &Path,
        dir: &Path,
        rpc_secret: &str,
        replication: u32,
    ) -> anyhow::Result<Self> {
        let (rpc_port, s3_port) = (free_port()?, free_port()?);
        let config = dir.join("garage.toml");
        let log = dir.join("garage.log");
        let text = format!(
            r#"metadata_dir = "{meta}"
data_dir = "{data}"
db_engine = "lmdb"
# Every write is on disk before Garage acknowledges it, as in production.
metadata_fsync = true
data_fsync = true

replication_factor = {replication}

rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{rpc_secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3_port}"
"#,
            meta = dir.join("meta").display(),
            data = dir.join("data").display(),
        );
        std::fs::write(&config, text)
            .with_context(|| format!("writing Garage's configuration {}", config.display()))?;
        let out = std::fs::File::create(&log)
            .with_context(|| format!("creating Garage's log {}", log.display()))?;
        let err = out.try_clone()?;
        let child = Command::new(program)
            .arg("-c")
            .arg(&config)
            .arg("server")
            .env("RUST_LOG", "garage=info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {} server", program.display()))?;
        let mut node = Self {
            process: Process(child),
            config,
            log,
            s3_port,
            killed: false,
        };
        let log = node.log.clone();
        wait_until("garage server", Duration::from_secs(60), &log, || {
            if matches!(node.process.0.try_wait(), Ok(Some(_))) {
                return true; // exited: reported below, with the log
            }
            command(program, &node)
                .arg("status")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })?;
        if let Ok(Some(status)) = node.process.0.try_wait() {
            bail!(
                "garage server exited ({status}) while starting; its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        Ok(node)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    fn kill(&mut self) {
        self.process.kill();
        self.killed = true;
    }
}

/// The `garage` binary: on the `PATH`, or where `cargo install` puts it.
fn garage_program() -> anyhow::Result<PathBuf> {
    let mut candidates = on_path("garage");
    if let Some(home) = std::env::var_os("HOME") {
        let installed = PathBuf::from(home).join(".cargo/bin/garage");
        if !candidates.contains(&installed) {
            candidates.push(installed);
        }
    }
    find_program(&candidates, PACKAGE)
}

/// A fresh `rpc_secret`: 32 random bytes in hex, as the configuration reference asks.
fn rpc_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("drawing Garage's rpc_secret: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `garage -c <the node's configuration>`.
fn command(program: &Path, node: &Node) -> Command {
    let mut command = Command::new(program);
    command.arg("-c").arg(&node.config).stdin(Stdio::null());
    command
}

/// Runs a CLI command against `node`; its standard output, or an error with what it said.
fn run(program: &Path, node: &Node, args: &[&str]) -> anyhow::Result<String> {
    let output = command(program, node)
        .args(args)
        .output()
        .with_context(|| format!("running garage {}", args.join(" ")))?;
    if !output.status.success() {
        bail!(
            "garage {} failed ({}): {}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim(),
        );
    }
    String::from_utf8(output.stdout)
        .with_context(|| format!("garage {} printed something not UTF-8", args.join(" ")))
}

/// Calls admin API `endpoint` through the CLI (`garage json-api`), with `payload`; its answer.
fn admin_json(
    program: &Path,
    node: &Node,
    endpoint: &str,
    payload: Option<Value>,
) -> anyhow::Result<Value> {
    let payload = payload.map(|p| p.to_string());
    let mut args = vec!["json-api", endpoint];
    args.extend(payload.as_deref());
    let out = run(program, node, &args)?;
    serde_json::from_str(&out)
        .with_context(|| format!("garage json-api {endpoint} answered something not JSON: {out}"))
}

fn string_field(value: &Value, field: &str, endpoint: &str) -> anyhow::Result<String> {
    value
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("garage json-api {endpoint} answered no `{field}`: {value}"))
}

/// The full ids of the nodes in a `GetClusterStatus` answer (`nodes[].id`).
fn node_ids(status: &Value) -> anyhow::Result<Vec<String>> {
    let ids: Vec<String> = status
        .get("nodes")
        .and_then(Value::as_array)
        .map(|nodes| {
            nodes
                .iter()
                .filter_map(|n| n.get("id").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() {
        bail!("garage json-api GetClusterStatus named no node: {status}");
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_read_from_the_cluster_status() {
        let status = json!({
            "layoutVersion": 0,
            "nodes": [{ "id": "8b03eb0fff755598aa", "isUp": true }, { "id": "11ff", "isUp": false }],
        });
        assert_eq!(
            node_ids(&status).unwrap(),
            vec!["8b03eb0fff755598aa", "11ff"]
        );
        assert!(node_ids(&json!({ "nodes": [] })).is_err());
        assert!(node_ids(&json!({})).is_err());
    }

    #[test]
    fn the_cluster_is_healthy_only_when_every_partition_has_all_its_nodes() {
        let health = |status: &str, all_ok: u64| {
            json!({ "status": status, "partitions": 256, "partitionsQuorum": 256,
                    "partitionsAllOk": all_ok, "storageNodes": 3, "storageNodesUp": 3 })
        };
        assert!(is_healthy(&health("healthy", 256)));
        assert!(!is_healthy(&health("degraded", 256)));
        assert!(!is_healthy(&health("healthy", 255)));
        // Before any layout: no partition at all.
        assert!(!is_healthy(
            &json!({ "status": "healthy", "partitions": 0, "partitionsAllOk": 0 })
        ));
    }

    #[test]
    fn a_cluster_of_no_node_or_too_many_is_refused_by_name() {
        for n in [0, MAX_NODES + 1] {
            let error = Garage::start_cluster(n).unwrap_err().to_string();
            assert!(
                error.contains(&format!("{n} nodes")) && error.contains("1 to"),
                "{error}"
            );
        }
    }

    #[test]
    fn the_rpc_secret_is_32_fresh_bytes_in_hex() {
        let (a, b) = (rpc_secret().unwrap(), rpc_secret().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
