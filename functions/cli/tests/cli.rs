//! The `hashgate` binary end to end: real list files in every format, real files and
//! directories, exit codes, JSON output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn fixture(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

fn hashgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hashgate"))
        .args(args)
        .env_remove("HASHGATE_DB")
        .env_remove("HASHGATE_FILTER_FP_RATE")
        .output()
        .expect("run hashgate")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

/// A database with every fixture list imported.
fn imported_db() -> tempfile::TempDir {
    let db = tempfile::tempdir().unwrap();
    let dbp = db.path().to_str().unwrap();
    let out = hashgate(&[
        "lists",
        "import",
        "--db",
        dbp,
        &fixture("plain.txt"),
        &fixture("clearinghouse.csv"),
        &fixture("projectvic-1.3.json"),
        &fixture("projectvic-2.0.json"),
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    db
}

fn scan_json(db: &Path, paths: &[&str]) -> (i32, Vec<Value>) {
    let mut args = vec!["scan", "--json", "--db", db.to_str().unwrap()];
    args.extend_from_slice(paths);
    let out = hashgate(&args);
    let lines = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    (code(&out), lines)
}

fn by_name<'a>(lines: &'a [Value], name: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["path"].as_str().unwrap().ends_with(name))
        .unwrap_or_else(|| panic!("no line for {name} in {lines:?}"))
}

#[test]
fn import_every_format_then_scan_a_directory() {
    let db = imported_db();
    let stats = hashgate(&[
        "lists",
        "stats",
        "--json",
        "--db",
        db.path().to_str().unwrap(),
    ]);
    let stats: Value = serde_json::from_slice(&stats.stdout).unwrap();
    let digests: Vec<u64> = stats["digests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_u64().unwrap())
        .collect();
    // md5: samples 1,3,5,6; sha1: 3,4,5,6; sha256: 2; no PDQ hashes
    assert_eq!(digests, [4, 4, 1, 0]);
    assert_eq!(stats["filter_current"], true);
    assert_eq!(stats["filter"]["entries"], 9);

    let (status, lines) = scan_json(db.path(), &[&fixture("files")]);
    assert_eq!(status, 1, "matches and no errors: exit 1");
    assert_eq!(lines.len(), 8);
    for n in 1..=6 {
        let line = by_name(&lines, &format!("sample-{n}.txt"));
        assert_eq!(line["verdict"], "match", "sample-{n}: {line}");
        assert_eq!(line["error"], Value::Null);
        assert_eq!(line["bytes"], 18);
    }
    for clean in ["clean-1.txt", "clean-empty.txt"] {
        let line = by_name(&lines, clean);
        assert_eq!(line["verdict"], "clean");
        assert_eq!(line["matches"], Value::Array(vec![]));
    }
    // Exactly the algorithms the lists need are computed.
    let digests = by_name(&lines, "clean-1.txt")["digests"]
        .as_object()
        .unwrap();
    let algs: Vec<&str> = digests.keys().map(String::as_str).collect();
    assert_eq!(algs, ["md5", "sha1", "sha256"]);
    assert_eq!(
        digests["md5"], "1685f584ae41ce2e320afc831d1d2386",
        "md5 of 'an ordinary holiday photo\\n'"
    );

    // Provenance: list, category and id from the CSV; both digests of sample-3 matched.
    let m = &by_name(&lines, "sample-3.txt")["matches"];
    let m: Vec<(&str, &str, &str, &str)> = m
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["algorithm"].as_str().unwrap(),
                m["list"].as_str().unwrap(),
                m["category"].as_str().unwrap(),
                m["id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        m,
        [
            ("md5", "clearinghouse", "A1", "CH-0003"),
            ("sha1", "clearinghouse", "A1", "CH-0003")
        ]
    );
    let vic = &by_name(&lines, "sample-5.txt")["matches"][0];
    assert_eq!(vic["list"], "projectvic-1.3");
    assert_eq!(vic["id"], "105");
    assert_eq!(vic["category"], "1");
    let plain = &by_name(&lines, "sample-2.txt")["matches"][0];
    assert_eq!(plain["algorithm"], "sha256");
    assert_eq!(plain["list"], "plain");
}

#[test]
fn exit_status_zero_when_all_clean() {
    let db = imported_db();
    let (status, lines) = scan_json(db.path(), &[&fixture("files/clean-1.txt")]);
    assert_eq!(status, 0);
    assert_eq!(lines[0]["verdict"], "clean");
}

#[test]
fn text_output_names_lists() {
    let db = imported_db();
    let out = hashgate(&[
        "scan",
        "--db",
        db.path().to_str().unwrap(),
        &fixture("files/sample-4.txt"),
        &fixture("files/clean-1.txt"),
    ]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("MATCH  "), "{text}");
    assert!(
        lines[0].ends_with("(sha1 40e04972b0c0ef86cdfc6a0c1ed23eea3f352baf on clearinghouse, category B, trade, id CH-0004)"),
        "{text}"
    );
    assert!(lines[1].starts_with("clean  "), "{text}");
    assert!(stderr(&out).contains("scanned 2 files"), "{}", stderr(&out));
}

#[test]
fn unreadable_broken_and_special_files_are_errors_and_the_run_goes_on() {
    let db = imported_db();
    let tree = tempfile::tempdir().unwrap();
    let t = tree.path();
    std::fs::copy(fixture("files/sample-1.txt"), t.join("a-match.txt")).unwrap();
    std::fs::write(t.join("b-clean.txt"), b"fine").unwrap();
    std::os::unix::fs::symlink(t.join("missing"), t.join("c-broken-link")).unwrap();
    let fifo = t.join("d-fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    std::fs::create_dir(t.join("e-dir")).unwrap();
    std::fs::write(t.join("e-dir/f-nested.txt"), b"nested").unwrap();
    std::os::unix::fs::symlink(t, t.join("e-dir/g-loop")).unwrap();
    let unreadable = t.join("h-unreadable.txt");
    std::fs::write(&unreadable, b"secret").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).unwrap();
    let running_as_root = std::fs::read(&unreadable).is_ok();

    let missing = t.join("no-such-file");
    let (status, lines) = scan_json(db.path(), &[t.to_str().unwrap(), missing.to_str().unwrap()]);
    assert_eq!(
        status, 2,
        "any failure: exit 2, even with a match: {lines:?}"
    );
    assert_eq!(by_name(&lines, "a-match.txt")["verdict"], "match");
    assert_eq!(by_name(&lines, "b-clean.txt")["verdict"], "clean");
    assert_eq!(by_name(&lines, "f-nested.txt")["verdict"], "clean");
    let broken = by_name(&lines, "c-broken-link");
    assert_eq!(broken["verdict"], "error");
    assert_eq!(broken["error"], "broken symbolic link");
    let fifo = by_name(&lines, "d-fifo");
    assert_eq!(fifo["error"], "not a regular file (named pipe)");
    let looped = by_name(&lines, "g-loop");
    assert_eq!(looped["verdict"], "error");
    assert!(
        looped["error"].as_str().unwrap().contains("loop"),
        "{looped}"
    );
    let missing = by_name(&lines, "no-such-file");
    assert_eq!(missing["verdict"], "error");
    assert!(
        missing["error"].as_str().unwrap().contains("No such file"),
        "{missing}"
    );
    if !running_as_root {
        let u = by_name(&lines, "h-unreadable.txt");
        assert_eq!(u["verdict"], "error");
        assert!(
            u["error"].as_str().unwrap().starts_with("cannot open"),
            "{u}"
        );
    }
    // Walk order is stable: sorted by name within each directory, roots in the order given.
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l["path"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(names.first(), Some(&"a-match.txt"));
    assert_eq!(names.last(), Some(&"no-such-file"));
}

#[test]
fn malformed_list_is_refused_whole_and_others_still_apply() {
    let db = tempfile::tempdir().unwrap();
    let dbp = db.path().to_str().unwrap();
    let out = hashgate(&[
        "lists",
        "import",
        "--db",
        dbp,
        &fixture("malformed.csv"),
        &fixture("plain.txt"),
    ]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}:3: column \"md5\": not a hex digest: \"xyz\"",
            fixture("malformed.csv")
        )),
        "{err}"
    );
    assert!(err.contains("nothing of"), "{err}");
    let text = stdout(&out);
    assert!(text.contains("rejected 1 file"), "{text}");

    // The first row of malformed.csv was valid, and must not have been applied.
    let (_, lines) = scan_json(db.path(), &[&fixture("files/sample-3.txt")]);
    assert_eq!(
        lines[0]["verdict"], "clean",
        "nothing of the refused file applied"
    );
    let (_, lines) = scan_json(db.path(), &[&fixture("files/sample-1.txt")]);
    assert_eq!(lines[0]["verdict"], "match", "the good file applied");
}

#[test]
fn reimport_is_idempotent_and_removal_withdraws() {
    let db = imported_db();
    let dbp = db.path().to_str().unwrap();
    let out = hashgate(&[
        "lists",
        "import",
        "--json",
        "--db",
        dbp,
        &fixture("plain.txt"),
    ]);
    assert_eq!(code(&out), 0);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["added"], 0);
    assert_eq!(r["already_present"], 2);

    // Withdrawing one of the list's two entries is half of it: more than the share allowed
    // without --force, so nothing is withdrawn...
    let withdraw = |extra: &[&str]| {
        let mut args = vec![
            "lists", "import", "--json", "--remove", "--list", "plain", "--db", dbp,
        ];
        args.extend_from_slice(extra);
        let file = fixture("withdrawn.txt");
        args.push(&file);
        hashgate(&args)
    };
    let out = withdraw(&[]);
    assert_eq!(code(&out), 2, "{}", String::from_utf8_lossy(&out.stdout));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        r["files"][0]["error"].as_str().unwrap().contains("--force"),
        "{r}"
    );
    assert_eq!(r["removed"], 0);
    let (status, _) = scan_json(db.path(), &[&fixture("files/sample-1.txt")]);
    assert_eq!(status, 1, "still listed");
    // ...until forced, or allowed by a larger share.
    let out = withdraw(&["--max-withdraw-share", "0.5"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["removed"], 1);
    let out = withdraw(&["--force"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let (status, lines) = scan_json(db.path(), &[&fixture("files/sample-1.txt")]);
    assert_eq!((status, &lines[0]["verdict"]), (0, &Value::from("clean")));
}

#[test]
fn stdin_import_needs_a_list_name() {
    let db = tempfile::tempdir().unwrap();
    let out = hashgate(&["lists", "import", "--db", db.path().to_str().unwrap(), "-"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("needs --list NAME"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_2_gb_line_is_refused_naming_file_and_line() {
    let db = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.txt");
    // Sparse: 2 GiB of NUL bytes and no newline, costing no disk.
    let f = std::fs::File::create(&huge).unwrap();
    f.set_len(2 << 30).unwrap();
    let out = hashgate(&[
        "lists",
        "import",
        "--db",
        db.path().to_str().unwrap(),
        huge.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains(&format!(
            "{}:1: line is longer than 65536 bytes",
            huge.display()
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn damaged_or_stale_filter_never_hides_a_match() {
    let db = imported_db();
    let dbp = db.path().to_str().unwrap();
    let filter = db.path().join("filter.hgf");

    // Stale: keep the filter from before a new list is imported.
    let old = std::fs::read(&filter).unwrap();
    let extra = tempfile::tempdir().unwrap();
    let list = extra.path().join("late.txt");
    std::fs::write(&list, "1685f584ae41ce2e320afc831d1d2386\n").unwrap(); // clean-1.txt
    assert_eq!(
        code(&hashgate(&[
            "lists",
            "import",
            "--db",
            dbp,
            list.to_str().unwrap()
        ])),
        0
    );
    std::fs::write(&filter, &old).unwrap();
    let out = hashgate(&["scan", "--json", "--db", dbp, &fixture("files/clean-1.txt")]);
    assert_eq!(
        code(&out),
        1,
        "found through the store despite the stale filter"
    );
    assert!(
        stderr(&out).contains("was built from store version"),
        "{}",
        stderr(&out)
    );

    // Damaged: flip a byte of the bitmap.
    let mut bytes = old.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&filter, &bytes).unwrap();
    let out = hashgate(&["scan", "--db", dbp, &fixture("files/sample-1.txt")]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("REFUSED"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("checksum mismatch"),
        "{}",
        stderr(&out)
    );
    let out = hashgate(&["filter", "inspect", filter.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("checksum mismatch"),
        "{}",
        stderr(&out)
    );

    // Rebuilding repairs it.
    assert_eq!(code(&hashgate(&["filter", "rebuild", "--db", dbp])), 0);
    let out = hashgate(&["filter", "inspect", filter.to_str().unwrap()]);
    assert_eq!(code(&out), 0);
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["entries"], 10);
}

#[test]
fn scan_without_a_database_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = hashgate(&[
        "scan",
        "--db",
        dir.path().join("none").to_str().unwrap(),
        &fixture("files"),
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no hash store here"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_is_everywhere() {
    for args in [
        vec!["--help"],
        vec!["lists", "--help"],
        vec!["lists", "import", "--help"],
        vec!["lists", "stats", "--help"],
        vec!["scan", "--help"],
        vec!["filter", "rebuild", "--help"],
        vec!["filter", "inspect", "--help"],
    ] {
        let out = hashgate(&args);
        assert_eq!(code(&out), 0, "{args:?}");
        assert!(stdout(&out).contains("Usage: hashgate"), "{args:?}");
    }
}

#[test]
fn a_list_adding_the_empty_files_digest_is_refused_so_zero_byte_files_never_match() {
    let db = tempfile::tempdir().unwrap();
    let dbp = db.path().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("bad.txt");
    let empty = dir.path().join("empty.bin");
    let real = dir.path().join("real.bin");
    std::fs::write(&empty, b"").unwrap();
    std::fs::write(&real, b"listed content").unwrap();
    let real_md5 =
        hashgate_core::digest::digest_bytes(b"listed content", hashgate_core::AlgorithmSet::ALL)
            .get(hashgate_core::Algorithm::Md5)
            .unwrap()
            .to_hex();
    std::fs::write(
        &list,
        format!("{real_md5}\nd41d8cd98f00b204e9800998ecf8427e\n"),
    )
    .unwrap();
    let out = hashgate(&["lists", "import", "--db", dbp, list.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}:2:", list.display())) && err.contains("empty file"),
        "{err}"
    );
    // Nothing of the file applied: neither the empty file nor the real entry matches.
    let (_, lines) = scan_json(
        db.path(),
        &[empty.to_str().unwrap(), real.to_str().unwrap()],
    );
    assert!(lines.iter().all(|l| l["verdict"] == "clean"), "{lines:?}");
    // A withdrawal of it is still accepted (a store that took it before can be mended).
    let out = hashgate(&[
        "lists",
        "import",
        "--remove",
        "--list",
        "bad",
        "--db",
        dbp,
        list.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// The matches of one scanned file as (list, category, id), sorted.
fn provenance_of(db: &Path, file: &str) -> Vec<(String, String, String)> {
    let (_, lines) = scan_json(db, &[&fixture(file)]);
    let mut got: Vec<(String, String, String)> = lines[0]["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let s = |k: &str| m[k].as_str().unwrap_or("").to_string();
            (s("list"), s("category"), s("id"))
        })
        .collect();
    got.sort();
    got.dedup();
    got
}

#[test]
fn lists_export_with_their_provenance_and_import_elsewhere_unchanged() {
    let db = imported_db();
    let dbp = db.path().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();

    // Every list, as CSV with a list column: a fresh store matches exactly as the first.
    let all = dir.path().join("all.csv");
    let out = hashgate(&[
        "lists",
        "export",
        "--all",
        "--db",
        dbp,
        "-o",
        all.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = std::fs::read_to_string(&all).unwrap();
    assert!(
        text.starts_with("md5,sha1,sha256,pdq,list,category,id\n"),
        "{text}"
    );
    assert!(stderr(&out).contains("clearinghouse"), "{}", stderr(&out));
    let fresh = tempfile::tempdir().unwrap();
    let freshp = fresh.path().to_str().unwrap();
    let out = hashgate(&["lists", "import", "--db", freshp, all.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for file in [
        "files/sample-3.txt",
        "files/sample-5.txt",
        "files/sample-2.txt",
    ] {
        let want = provenance_of(db.path(), file);
        assert!(!want.is_empty(), "{file} matches in the first store");
        assert_eq!(provenance_of(fresh.path(), file), want, "{file}");
    }
    assert!(provenance_of(fresh.path(), "files/clean-1.txt").is_empty());

    // One list, as VICS: its ids and categories, under the name the importer gives.
    let one = dir.path().join("clearinghouse.json");
    let out = hashgate(&[
        "lists",
        "export",
        "--from",
        "clearinghouse",
        "--db",
        dbp,
        "-o",
        one.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let other = tempfile::tempdir().unwrap();
    let otherp = other.path().to_str().unwrap();
    let out = hashgate(&[
        "lists",
        "import",
        "--db",
        otherp,
        "--list",
        "partner",
        one.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        provenance_of(other.path(), "files/sample-3.txt"),
        [(
            "partner".to_string(),
            "A1".to_string(),
            "CH-0003".to_string()
        )]
    );
    assert!(
        provenance_of(other.path(), "files/sample-5.txt").is_empty(),
        "only that list"
    );

    // A list the store does not have is an error, and nothing is written.
    let none = dir.path().join("none.csv");
    let out = hashgate(&[
        "lists",
        "export",
        "--from",
        "no-such-list",
        "--db",
        dbp,
        "-o",
        none.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no-such-list"), "{}", stderr(&out));
    assert!(!none.exists(), "no file left behind");
    // Something to export must be named.
    let out = hashgate(&["lists", "export", "--db", dbp]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}
