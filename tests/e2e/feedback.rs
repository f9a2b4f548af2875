//! List-entry quality on the local stack: false positives recorded against a list entry in
//! DynamoDB (three distinct cases, two of them at the same moment, one twice) suppress it:
//! `hashgate lists stats` shows it suppressed, a lookup of its digest no longer matches it
//! (the digest's entry on another list, imported afterwards, still does), and `hashgate
//! lists feedback` writes it for the list's source. `hashgate lists enable` makes it match
//! again, with an `entry_enabled` entry in the audit chain that `hashgate audit verify`
//! still verifies. Bad arguments are refused, naming what is wrong.

use std::process::Output;

use hashgate_aws::dynamo::{DynamoCases, DynamoHashes};
use hashgate_core::audit::AuditAction;
use hashgate_core::digest::{Algorithm, Digest};
use hashgate_core::feedback::ListFeedback;
use hashgate_core::review::ReviewStore;
use hashgate_core::scan::Match;
use hashgate_core::store::HashStore;
use hashgate_core::time::Timestamp;
use hashgate_e2e::{bin, import_list, md5_hex, Stack};
use serde_json::Value;

/// The list `import_list` imports into (its file's name).
const LIST: &str = "e2e-list";

fn content(seed: u8) -> Vec<u8> {
    (0..2048u32)
        .map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8 ^ seed)
        .collect()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn hashgate(stack: &Stack, args: &[&str]) -> Output {
    stack
        .command(bin("hashgate"))
        .args(args)
        .output()
        .expect("run hashgate")
}

fn md5(data: &[u8]) -> Digest {
    Digest::parse_hex_as(Algorithm::Md5, &md5_hex(data)).unwrap()
}

fn hit(digest: Digest) -> Match {
    Match {
        distance: None,
        algorithm: Algorithm::Md5,
        digest,
        list: LIST.into(),
        category: None,
        id: None,
    }
}

async fn lists_matching(hashes: &DynamoHashes, digest: Digest) -> Vec<String> {
    let found = hashes.lookup(&[digest]).await.expect("lookup");
    found
        .into_iter()
        .flat_map(|s| s.provenance)
        .map(|p| p.list)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn feedback_suppresses_an_entry_after_repeated_false_positives_and_enable_restores_it() {
    let stack = Stack::start();
    let sdk = stack.sdk().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let hashes = DynamoHashes::new(dynamo.clone(), stack.var("HASHGATE_HASH_TABLE"));
    let (noisy, other, never) = (content(1), content(2), content(3));
    import_list(&stack, &[&noisy, &other], &[]);
    let (noisy_md5, other_md5) = (md5(&noisy), md5(&other));
    let now = Timestamp::now();

    let r = hashes
        .record_false_positive("case-1", &[hit(noisy_md5)], now, 3)
        .await
        .unwrap();
    assert_eq!((r[0].false_positives, r[0].newly_suppressed), (1, false));
    // The same case again (a retried followup) counts once.
    let r = hashes
        .record_false_positive("case-1", &[hit(noisy_md5)], now, 3)
        .await
        .unwrap();
    assert_eq!(r[0].false_positives, 1);
    // Two cases at the same moment: the conditional writes lose neither.
    let matched = [hit(noisy_md5)];
    let (a, b) = tokio::join!(
        hashes.record_false_positive("case-2", &matched, now, 3),
        hashes.record_false_positive("case-3", &matched, now, 3),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        [a[0].newly_suppressed, b[0].newly_suppressed]
            .iter()
            .filter(|s| **s)
            .count(),
        1,
        "exactly one of them suppresses: {a:?} {b:?}"
    );
    let last_case = if a[0].newly_suppressed {
        "case-2"
    } else {
        "case-3"
    };
    // An entry not on the store is not recorded.
    let r = hashes
        .record_false_positive("case-4", &[hit(md5(&never))], now, 3)
        .await
        .unwrap();
    assert!(r.is_empty(), "{r:?}");

    assert!(lists_matching(&hashes, noisy_md5).await.is_empty());
    assert_eq!(lists_matching(&hashes, other_md5).await, [LIST]);

    // The digest on a second list, imported afterwards: that entry matches, the suppressed
    // one stays suppressed (the import keeps the digest's feedback).
    let dir = tempfile::tempdir().unwrap();
    let second = dir.path().join("second.txt");
    std::fs::write(&second, format!("{}\n", md5_hex(&noisy))).unwrap();
    let out = hashgate(
        &stack,
        &[
            "lists",
            "import",
            "--list",
            "second",
            second.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(lists_matching(&hashes, noisy_md5).await, ["second"]);

    // Stats show it suppressed.
    let digest_arg = format!("md5:{}", md5_hex(&noisy));
    let out = hashgate(&stack, &["lists", "stats"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains(&digest_arg) && shown.contains("SUPPRESSED"),
        "{shown}"
    );
    assert!(shown.contains("1 suppressed"), "{shown}");
    let out = hashgate(&stack, &["lists", "stats", "--json"]);
    let stats: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    assert_eq!(stats["suppressed"], 1, "{stats}");
    assert_eq!(stats["feedback"][0]["false_positives"], 3, "{stats}");

    // The feedback for the list's source.
    let csv = dir.path().join("feedback.csv");
    let out = hashgate(
        &stack,
        &[
            "lists",
            "feedback",
            "--list",
            LIST,
            "-o",
            csv.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written = std::fs::read_to_string(&csv).unwrap();
    let mut lines = written.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("list,id,algorithm,digest,"),
        "{written}"
    );
    let row = lines.next().expect("one entry");
    assert!(
        row.starts_with(&format!("{LIST},,md5,{},,3,{last_case},", md5_hex(&noisy))),
        "{row}"
    );
    assert!(row.contains(",true,"), "{row}");
    assert_eq!(lines.next(), None, "{written}");
    let out = hashgate(&stack, &["lists", "feedback", "--list", "nosuchlist"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("\"nosuchlist\"") && text(&out).contains(LIST),
        "{}",
        text(&out)
    );

    // Bad re-enablings are refused, naming what is wrong.
    let enable = |list: &str, digest: &str| {
        hashgate(
            &stack,
            &[
                "lists",
                "enable",
                "--list",
                list,
                "--digest",
                digest,
                "--by",
                "admin-1",
                "--reason",
                "checked the files: the list entry is wrong about them",
            ],
        )
    };
    for (list, digest, says) in [
        (LIST, md5_hex(&noisy), "--digest"),
        (LIST, format!("sha1:{}", md5_hex(&noisy)), "sha1"),
        (
            LIST,
            format!("md5:{}", md5_hex(&never)),
            "not in the hash store",
        ),
        ("nosuchlist", digest_arg.clone(), "not in the hash store"),
        (
            LIST,
            format!("md5:{}", md5_hex(&other)),
            "no false positives",
        ),
    ] {
        let out = enable(list, &digest);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{list} {digest}: {}",
            text(&out)
        );
        assert!(text(&out).contains(says), "{says}: {}", text(&out));
    }

    let out = enable(LIST, &digest_arg);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut lists = lists_matching(&hashes, noisy_md5).await;
    lists.sort();
    assert_eq!(lists, [LIST, "second"]);
    let out = hashgate(&stack, &["lists", "stats"]);
    assert!(
        text(&out).contains("re-enabled by admin-1"),
        "{}",
        text(&out)
    );
    // Not suppressed any more: a second re-enabling is refused.
    let out = enable(LIST, &digest_arg);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("not suppressed"), "{}", text(&out));

    // Audited, in a chain that still verifies.
    let audit = DynamoCases::new(
        dynamo.clone(),
        stack.var("HASHGATE_CASE_TABLE"),
        stack.var("HASHGATE_AUDIT_TABLE"),
    );
    let chain = audit.chain(0, 1000).await.unwrap();
    let enabled: Vec<_> = chain
        .iter()
        .filter(|e| e.entry.action == AuditAction::EntryEnabled)
        .collect();
    assert_eq!(enabled.len(), 1, "{chain:?}");
    assert_eq!(enabled[0].entry.case_id, last_case);
    assert_eq!(enabled[0].entry.actor, "admin-1");
    assert!(enabled[0].entry.reason.is_some());
    let out = hashgate(&stack, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("audit chain verified"),
        "{}",
        text(&out)
    );

    // Re-enabled: suppressed again only after three more false positives.
    for (i, case) in ["case-5", "case-6", "case-7"].iter().enumerate() {
        let r = hashes
            .record_false_positive(case, &[hit(noisy_md5)], now, 3)
            .await
            .unwrap();
        assert_eq!(r[0].newly_suppressed, i == 2, "{case}: {r:?}");
    }
    assert_eq!(lists_matching(&hashes, noisy_md5).await, ["second"]);
}
