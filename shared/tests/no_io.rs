//! The core does no I/O of its own (ARCHITECTURE.md, "The rule"): no file system, network,
//! process environment, clock or operating-system randomness in its code, and no dependency
//! that brings them. This test reads the crate's own sources and manifest, so a change that
//! breaks the rule fails here, naming the file and line.

use std::path::Path;

/// What the core's non-test code must not touch, and why.
const FORBIDDEN: &[(&str, &str)] = &[
    ("std::fs", "files belong to hashgate-local"),
    ("File::", "files belong to hashgate-local"),
    ("std::net", "the network belongs to the adapters"),
    ("std::env", "configuration is read by the functions"),
    ("SystemTime::now", "the clock is passed in"),
    ("Instant::now", "the clock is passed in"),
    ("Timestamp::now", "the clock is passed in"),
    ("getrandom", "randomness is passed in"),
    ("tokio", "the core is runtime-agnostic"),
];

/// Dependencies that would bring I/O or cloud types into the core.
const FORBIDDEN_DEPENDENCIES: &[&str] = &["redb", "getrandom", "tokio", "aws-", "reqwest", "hyper"];

fn non_test_code(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |i| &text[..i])
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether `code` names `what` as a whole path: `File::open` does, `ListFile::from_object`
/// (another type whose name ends the same way) does not.
fn mentions(code: &str, what: &str) -> bool {
    code.match_indices(what).any(|(i, _)| {
        !code[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[test]
fn whole_paths_are_found_and_longer_names_are_not() {
    assert!(mentions("let f = File::open(p);", "File::"));
    assert!(mentions("std::fs::File::create(p)", "File::"));
    assert!(!mentions("ListFile::from_object(key, m)", "File::"));
    assert!(mentions("x = Timestamp::now();", "Timestamp::now"));
}

#[test]
fn the_core_does_no_io_of_its_own() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    assert!(files.len() > 10, "found the core's sources");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in non_test_code(&text).lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for (what, why) in FORBIDDEN {
                if mentions(code, what) {
                    found.push(format!("{}:{}: {what} ({why})", file.display(), n + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "I/O in the core:\n{}", found.join("\n"));
}

#[test]
fn the_core_depends_on_nothing_that_does_io() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let dependencies = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .expect("a [dependencies] table");
    for line in dependencies.lines() {
        let name = line.split(['=', '.']).next().unwrap_or("").trim();
        for bad in FORBIDDEN_DEPENDENCIES {
            assert!(
                !name.starts_with(bad),
                "shared/Cargo.toml depends on {name}: the core must not"
            );
        }
    }
}
