//! The architecture's rules that a reader can count, checked on every `make test` so that they
//! stay true (docs/ARCHITECTURE.md, "Rules the tests keep"):
//!
//! - the `monsoon` binary only parses arguments and wires libraries together: at most
//!   [`BINARY_LINES`] lines of code;
//! - no source file does several jobs at once: at most [`FILE_LINES`] lines of code each;
//! - the media-delivery paths read media through the `MediaStore` traits only: no file-system
//!   call in them (the local store's `sendfile` capability lives in `fast/`).
//!
//! A line of code is a line that is neither blank nor a `//` comment, before the file's
//! `#[cfg(test)]` module (tests are not counted).

use std::path::{Path, PathBuf};

/// The binary's budget: twelve commands' flags, the settings file, and one library call each.
const BINARY_LINES: usize = 900;

/// A file longer than this is split by what it does.
const FILE_LINES: usize = 600;

/// The server's modules on the path of a media request, and of the pages built from the
/// catalog: `delivery/` (the RFC 9110 decision and representation), `conn/` (the HTTP/1.1
/// connection), `live.rs` (the catalog refresh), `edge.rs`, `api.rs`, `pages/`.
const DELIVERY_PATHS: [&str; 6] = [
    "crates/server/src/delivery",
    "crates/server/src/conn",
    "crates/server/src/live.rs",
    "crates/server/src/edge.rs",
    "crates/server/src/api.rs",
    "crates/server/src/pages",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace")
}

/// `path` as the repository names it.
fn shown(path: &Path) -> String {
    let root = workspace();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Every `.rs` file under `path` (or `path` itself), sorted.
fn sources(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_owned()];
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .flat_map(|entry| sources(&entry.expect("a directory entry").path()))
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    files
}

/// The file's code before its tests, one line each.
fn code(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("#[cfg(test)]"))
        .filter(|line| !line.is_empty() && !line.starts_with("//"))
        .map(str::to_owned)
        .collect()
}

/// The crates' own sources (not their tests, benches or examples).
fn crate_sources() -> Vec<PathBuf> {
    let crates = workspace().join("crates");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&crates).expect("crates/") {
        let src = entry.expect("a directory entry").path().join("src");
        if src.is_dir() {
            files.extend(sources(&src));
        }
    }
    files
}

#[test]
fn the_binary_only_parses_and_wires() {
    let files = sources(&workspace().join("crates/monsoon/src"));
    let lines: Vec<(usize, String)> = files
        .iter()
        .map(|f| {
            (
                code(f).len(),
                f.file_name().unwrap().to_string_lossy().into(),
            )
        })
        .collect();
    let total: usize = lines.iter().map(|(n, _)| n).sum();
    assert!(
        total <= BINARY_LINES,
        "crates/monsoon has {total} lines of code, over its {BINARY_LINES}: move the logic \
         into the library that owns it ({lines:?})"
    );
    assert!(total > 0, "no code counted in crates/monsoon/src");
}

#[test]
fn no_source_file_is_over_its_budget() {
    let files = crate_sources();
    assert!(files.len() > 100, "only {} sources found", files.len());
    let over: Vec<String> = files
        .iter()
        .map(|f| (code(f).len(), f))
        .filter(|(n, _)| *n > FILE_LINES)
        .map(|(n, f)| format!("{} ({n})", shown(f)))
        .collect();
    assert!(
        over.is_empty(),
        "over {FILE_LINES} lines of code: {over:?}; split each by what it does"
    );
}

#[test]
fn the_delivery_paths_reach_media_only_through_the_store() {
    let root = workspace();
    let mut calls = Vec::new();
    for path in DELIVERY_PATHS {
        let files = sources(&root.join(path));
        assert!(!files.is_empty(), "{path} has no sources");
        for file in files {
            for line in code(&file) {
                if ["std::fs", "tokio::fs", "rustix::fs", "File::open"]
                    .iter()
                    .any(|call| line.contains(call))
                {
                    calls.push(format!("{}: {line}", shown(&file)));
                }
            }
        }
    }
    assert!(
        calls.is_empty(),
        "file-system calls on a delivery path (use the MediaStore): {calls:#?}"
    );
}

#[test]
fn code_lines_are_counted_before_the_tests_and_without_comments() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("f.rs");
    std::fs::write(
        &file,
        "//! doc\n\nfn a() {}\n    // note\n/// doc\nfn b() {}\n#[cfg(test)]\nmod tests {}\n",
    )
    .unwrap();
    assert_eq!(code(&file), ["fn a() {}", "fn b() {}"]);
}
