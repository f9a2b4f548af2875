//! The review page in a real browser. A private local stack quarantines a generated image
//! (its MD5 on an imported list, so the real scanner worker opens a case), the real
//! `review-api` binary serves the page and the API against the stack's Cognito user pool,
//! and `tests/browser/review.mjs` drives Debian's Chromium through playwright-core: two
//! reviewers sign in, see the case blurred, reveal it with a reason, see it blur again and
//! confirm it; the audit history and the reveal count show on the page. The screenshots are
//! kept in `target/test-artifacts/browser/`.
//!
//! Chromium (`/usr/bin/chromium`), Node.js and `tests/browser/node_modules` are installed by
//! `make test`; without them this test fails and says so.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use hashgate_core::event::ObjectRef;
use hashgate_e2e::{bin, case_ids, eventually, md5_hex, repo_root, Stack};

const WAIT: Duration = Duration::from_secs(90);
/// The browser script stops itself after 240 s; this is the backstop.
const BROWSER_DEADLINE: Duration = Duration::from_secs(300);
const CHROMIUM: &str = "/usr/bin/chromium";
const LIST: &str = "e2e-browser";
const CATEGORY: &str = "A1";

/// What the browser test needs besides the workspace, checked before a stack is started.
fn browser_prerequisites() -> PathBuf {
    let browser_dir = repo_root().join("tests/browser");
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: `make test` installs Debian's chromium package"
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "node is missing: `make test` installs Node.js and the browser test's packages"
    );
    let playwright = browser_dir.join("node_modules/playwright-core/package.json");
    assert!(
        playwright.exists(),
        "{} is missing: `make test` installs it (npm ci in tests/browser)",
        playwright.display()
    );
    browser_dir
}

/// `target/test-artifacts/browser/`, emptied.
fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            // target/<profile>/deps/<test binary>
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.parent()?.to_path_buf())
        })
        .unwrap_or_else(|| repo_root().join("target"));
    let dir = target.join("test-artifacts/browser");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the artifacts directory");
    dir
}

/// A 600x400 PNG of colour gradients and stripes: an image with fine detail for the preview
/// to blur (generated, so it stands for nothing).
fn test_image() -> Vec<u8> {
    let img = image::RgbImage::from_fn(600, 400, |x, y| {
        let stripe = if (x / 12 + y / 12) % 2 == 0 { 0 } else { 90 };
        image::Rgb([
            (x * 255 / 600) as u8,
            (y * 255 / 400) as u8,
            (165 + stripe) as u8,
        ])
    });
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("encode the PNG");
    png
}

/// Import a CSV list naming `content` by MD5, with a category and an entry id.
fn import_image_list(stack: &Stack, content: &[u8]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let list = dir.path().join("browser.csv");
    std::fs::write(
        &list,
        format!(
            "md5,category,id\n{},{CATEGORY},E2E-BROWSER-1\n",
            md5_hex(content)
        ),
    )
    .expect("write the list");
    let out = stack
        .command(bin("hashgate"))
        .args(["lists", "import", "--list", LIST])
        .arg(&list)
        .output()
        .expect("run hashgate");
    assert!(
        out.status.success(),
        "import failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The review API, stopped when dropped (its log printed if the test failed).
fn run_browser_script(
    browser_dir: &Path,
    env: &[(&str, &str)],
    artifacts: &Path,
) -> (Option<i32>, String) {
    let out_path = artifacts.join("review.out");
    let out = File::create(&out_path).expect("script output file");
    let mut child = Command::new("node")
        .current_dir(browser_dir)
        .arg("review.mjs")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone().expect("output handle")))
        .stderr(Stdio::from(out))
        .spawn()
        .expect("run node tests/browser/review.mjs");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("script status") {
            break status.code();
        }
        if start.elapsed() > BROWSER_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    (
        status,
        std::fs::read_to_string(&out_path).unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn reviewers_take_a_case_through_the_page_in_a_real_browser() {
    let browser_dir = browser_prerequisites();
    let artifacts = artifacts_dir();

    let stack = Stack::start();
    let sdk = stack.sdk().await;
    let s3 = hashgate_aws::s3_client(&sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let png = test_image();
    import_image_list(&stack, &png);
    let _worker = stack.worker(&[]);

    let bucket = stack.var("HASHGATE_UPLOAD_BUCKET").to_string();
    let key = "photos/browser-test.png";
    let put = s3
        .put_object()
        .bucket(&bucket)
        .key(key)
        .content_type("image/png")
        .body(ByteStream::from(png.clone()))
        .send()
        .await
        .expect("upload the image");
    let object = ObjectRef {
        bucket: bucket.clone(),
        key: key.into(),
        version_id: put.version_id().map(str::to_string),
        etag: put.e_tag().map(|e| e.trim_matches('"').to_string()),
    };
    let case_id = object.case_id();
    let cases = stack.var("HASHGATE_CASE_TABLE");
    eventually("the image's case", WAIT, || async {
        case_ids(&dynamo, cases)
            .await
            .contains(&case_id)
            .then_some(())
    })
    .await;

    let api = stack.review_api(&[("HASHGATE_REVEAL_SECONDS", "2")]);
    let url = api.url.as_str();

    let users = stack.state_dir().join("review-users.json");
    assert!(
        users.exists(),
        "{} is missing: scripts/localstack.py writes it with the reviewers' passwords",
        users.display()
    );
    let users = users.to_str().expect("a UTF-8 path");
    let artifacts_str = artifacts.to_str().expect("a UTF-8 path");
    let (status, output) = tokio::task::spawn_blocking({
        let browser_dir = browser_dir.clone();
        let artifacts = artifacts.clone();
        let env: Vec<(String, String)> = [
            ("REVIEW_URL", url),
            ("REVIEW_USERS", users),
            ("CASE_ID", case_id.as_str()),
            ("ARTIFACTS", artifacts_str),
            ("EXPECT_LIST", LIST),
            ("EXPECT_CATEGORY", CATEGORY),
            ("CHROMIUM", CHROMIUM),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        move || {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            run_browser_script(&browser_dir, &env, &artifacts)
        }
    })
    .await
    .expect("the browser script's thread");

    println!("{output}");
    assert!(
        status == Some(0),
        "the browser test failed ({}); screenshots and the browser console are in {}:\n{output}",
        match status {
            Some(code) => format!("exit status {code}"),
            None => format!("killed after {} s", BROWSER_DEADLINE.as_secs()),
        },
        artifacts.display()
    );
    drop(api);
}
