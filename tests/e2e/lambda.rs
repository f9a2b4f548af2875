//! The real `scanner` binary (and the `review-api` binary, with HTTP API events, and the
//! `report-sender` binary, with EventBridge events) under the
//! real Lambda runtime emulator (`cargo lambda watch
//! --only-lambda-apis`), invoked with `cargo lambda invoke` in every shape the function
//! accepts: a direct S3 event notification, an SQS batch, an EventBridge "Object Created"
//! event, S3's `s3:TestEvent`, and a payload that is no event at all. Each invocation is
//! synchronous, so its effects on the local stack are checked as soon as it returns.
//!
//! The emulator builds nothing here: the test starts the already-built binary itself with
//! the variables the emulator asks for (`AWS_LAMBDA_RUNTIME_API` pointing at
//! `http://<addr>/.rt/<function name>`, the function's name, memory size and version).

use hashgate_core::quarantine::metadata;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use hashgate_core::event::ObjectRef;
use hashgate_e2e::{
    bin, case_ids, eventually, get, import_list, md5_hex, put, repo_root, stored_versions, tags,
    Stack,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(120);

/// The function's name: the scanner's binary target, so the emulator knows it.
const FUNCTION: &str = "scanner";

/// Content on the list (harmless bytes standing in for known material).
const LISTED: &[u8] = b"known item, invoked through the Lambda runtime";

fn cargo_lambda() -> PathBuf {
    let path = repo_root().join(".venv/bin/cargo-lambda");
    assert!(
        path.exists(),
        "{} is missing: run `make venv` (make test does)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A child process killed when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_logged(cmd: &mut Command, log: &Path) -> Guard {
    let file = std::fs::File::create(log).expect("log file");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(file.try_clone().expect("log handle")))
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap_or_else(|e| panic!("start {:?}: {e}", cmd.get_program()));
    Guard(child)
}

/// The Lambda runtime emulator and the scanner function attached to it; both stopped when
/// dropped. Their output is kept in files, for the assertion messages.
struct Lambda {
    // Dropped in this order: the function, then the emulator, then their logs.
    function: Guard,
    emulator: Guard,
    port: u16,
    invocations: usize,
    dir: tempfile::TempDir,
    /// The function's name: its binary target, so the emulator knows it.
    name: &'static str,
}

impl Lambda {
    /// Start the emulator, wait until it accepts connections, then start the function
    /// (`binary`: the debug build, or the packaged `bootstrap`).
    async fn start(stack: &Stack, binary: &Path) -> Lambda {
        Lambda::start_named(stack, binary, FUNCTION, &[]).await
    }

    /// The same for the function `name`, with extra variables.
    async fn start_named(
        stack: &Stack,
        binary: &Path,
        name: &'static str,
        extra: &[(&str, &str)],
    ) -> Lambda {
        let dir = tempfile::tempdir().expect("lambda dir");
        let port = free_port();
        let root = repo_root();
        // The emulator reads the workspace's metadata (never builds it) to know that
        // `scanner` is one of its binaries.
        let mut emulator = spawn_logged(
            Command::new(cargo_lambda())
                .current_dir(&root)
                .args(["lambda", "watch", "--only-lambda-apis"])
                .args(["--invoke-address", "127.0.0.1", "--invoke-port"])
                .arg(port.to_string())
                .arg("--manifest-path")
                .arg(root.join("Cargo.toml")),
            &dir.path().join("emulator.log"),
        );
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let emulator_log = dir.path().join("emulator.log");
        let since = Instant::now();
        eventually("the Lambda emulator to listen", WAIT, || {
            if let Some(status) = emulator.0.try_wait().expect("emulator status") {
                panic!(
                    "the Lambda emulator exited ({status}):\n{}",
                    read(&emulator_log)
                );
            }
            assert!(
                since.elapsed() < WAIT,
                "the Lambda emulator is not listening on {addr}:\n{}",
                read(&emulator_log)
            );
            let up = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok();
            std::future::ready(up.then_some(()))
        })
        .await;

        let function = spawn_logged(
            stack
                .command(binary)
                .env("HASHGATE_LOG", "info")
                .env(
                    "AWS_LAMBDA_RUNTIME_API",
                    format!("http://127.0.0.1:{port}/.rt/{name}"),
                )
                .env("AWS_LAMBDA_FUNCTION_NAME", name)
                .envs(extra.iter().copied())
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "4096")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "1"),
            &dir.path().join("function.log"),
        );
        Lambda {
            function,
            emulator,
            port,
            invocations: 0,
            dir,
            name,
        }
    }

    fn function_log(&self) -> String {
        read(&self.dir.path().join("function.log"))
    }

    /// Both logs, for assertion messages.
    fn logs(&self) -> String {
        logs_in(self.dir.path())
    }

    /// Invoke the function with `payload` through `cargo lambda invoke`; its result.
    async fn invoke(&mut self, what: &str, payload: &Value) -> Value {
        self.invocations += 1;
        let base = self.dir.path().join(format!("invoke-{}", self.invocations));
        let data = base.with_extension("json");
        let out_path = base.with_extension("out");
        let err_path = base.with_extension("err");
        std::fs::write(&data, payload.to_string()).unwrap();
        let out = std::fs::File::create(&out_path).unwrap();
        let err = std::fs::File::create(&err_path).unwrap();
        let mut call = Guard(
            Command::new(cargo_lambda())
                .args(["lambda", "invoke", self.name])
                .args(["--invoke-address", "127.0.0.1", "--invoke-port"])
                .arg(self.port.to_string())
                .arg("--data-file")
                .arg(&data)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .expect("start cargo lambda invoke"),
        );
        let status: ExitStatus = {
            let (function, emulator, dir) = (&mut self.function, &mut self.emulator, &self.dir);
            let since = Instant::now();
            eventually(&format!("the {what} invocation to return"), WAIT, || {
                if let Some(status) = call.0.try_wait().expect("invoke status") {
                    return std::future::ready(Some(status));
                }
                for (name, child) in [("function", &mut *function), ("emulator", &mut *emulator)] {
                    if let Some(status) = child.0.try_wait().expect("child status") {
                        panic!(
                            "the {name} exited ({status}) during the {what} invocation\n{}",
                            logs_in(dir.path())
                        );
                    }
                }
                // Fails before `eventually` gives up, so the message carries the logs.
                assert!(
                    since.elapsed() < WAIT,
                    "the {what} invocation did not return\n{}",
                    logs_in(dir.path())
                );
                std::future::ready(None)
            })
            .await
        };
        let stdout = read(&out_path);
        assert!(
            status.success(),
            "the {what} invocation failed ({status}):\n{stdout}{}\n{}",
            read(&err_path),
            self.logs()
        );
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "the {what} invocation returned no JSON ({e}): {stdout:?}\n{}",
                self.logs()
            )
        })
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn logs_in(dir: &Path) -> String {
    format!(
        "--- emulator log ---\n{}\n--- function log ---\n{}",
        read(&dir.join("emulator.log")),
        read(&dir.join("function.log"))
    )
}

/// A key as S3 event notifications carry it: URL-encoded, a space as `+`.
fn notification_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// One uploaded object: where it is, which version, and what it holds.
struct Upload {
    object: ObjectRef,
    body: Vec<u8>,
}

async fn upload(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &[u8]) -> Upload {
    let object = put(s3, bucket, key, body).await;
    assert!(
        object.version_id.is_some(),
        "the upload bucket is versioned"
    );
    Upload {
        object,
        body: body.to_vec(),
    }
}

/// An S3 event notification record for `upload`, as S3 sends it; `with_version` adds the
/// `versionId` S3 sends for a versioned bucket (without it the scanner finds the version).
fn s3_record(upload: &Upload, with_version: bool) -> Value {
    let o = &upload.object;
    let mut object = json!({
        "key": notification_key(&o.key),
        "size": upload.body.len(),
        "eTag": o.etag.as_deref().unwrap(),
        "sequencer": "0065A1B2C3D4E5F601",
    });
    if with_version {
        object["versionId"] = json!(o.version_id.as_deref().unwrap());
    }
    json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-21T10:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "hashgate-scan",
            "bucket": {
                "name": o.bucket,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": format!("arn:aws:s3:::{}", o.bucket),
            },
            "object": object,
        },
    })
}

fn s3_notification(upload: &Upload, with_version: bool) -> Value {
    json!({"Records": [s3_record(upload, with_version)]})
}

fn sqs_record(message_id: &str, body: &str) -> Value {
    json!({
        "messageId": message_id,
        "receiptHandle": format!("AQEB{message_id}receipt"),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1795255200000",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1795255200001",
        },
        "messageAttributes": {},
        "md5OfBody": md5_hex(body.as_bytes()),
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:hashgate-scan",
        "awsRegion": "us-east-1",
    })
}

/// An EventBridge "Object Created" event for `upload`: the key as it is, not encoded.
fn eventbridge_event(upload: &Upload) -> Value {
    let o = &upload.object;
    json!({
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-21T10:00:00Z",
        "region": "us-east-1",
        "resources": [format!("arn:aws:s3:::{}", o.bucket)],
        "detail": {
            "version": "0",
            "bucket": {"name": o.bucket},
            "object": {
                "key": o.key,
                "size": upload.body.len(),
                "etag": o.etag.as_deref().unwrap(),
                "version-id": o.version_id.as_deref().unwrap(),
                "sequencer": "0065A1B2C3D4E5F602",
            },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "127.0.0.1",
            "reason": "PutObject",
        },
    })
}

/// Everything a test needs: the stack with a list imported, the function under the
/// emulator, and clients.
struct Fixture {
    // Dropped first: the function and emulator, then the stack they talk to.
    lambda: Lambda,
    stack: Stack,
    s3: aws_sdk_s3::Client,
    dynamo: aws_sdk_dynamodb::Client,
    uploads: String,
}

impl Fixture {
    async fn start() -> Fixture {
        Fixture::start_binary(&bin("scanner")).await
    }

    async fn start_binary(binary: &Path) -> Fixture {
        let stack = Stack::start();
        import_list(&stack, &[LISTED], &[]);
        let sdk = stack.sdk().await;
        let lambda = Lambda::start(&stack, binary).await;
        Fixture {
            s3: hashgate_aws::s3_client(&sdk),
            dynamo: aws_sdk_dynamodb::Client::new(&sdk),
            uploads: stack.var("HASHGATE_UPLOAD_BUCKET").to_string(),
            lambda,
            stack,
        }
    }

    async fn put(&self, key: &str, body: &[u8]) -> Upload {
        upload(&self.s3, &self.uploads, key, body).await
    }

    async fn cases(&self) -> Vec<String> {
        case_ids(&self.dynamo, self.stack.var("HASHGATE_CASE_TABLE")).await
    }

    /// `upload` was quarantined: a case under its version's case id, the copy under that
    /// case with the same bytes and its origin, and no version of it left in its bucket.
    async fn assert_quarantined(&self, upload: &Upload) {
        let object = &upload.object;
        let case_id = object.case_id();
        let cases = self.cases().await;
        assert!(
            cases.contains(&case_id),
            "no case {case_id} for {} among {cases:?}\n{}",
            object.key,
            self.lambda.logs()
        );
        let quarantine = self.stack.var("HASHGATE_QUARANTINE_BUCKET");
        let key = format!("cases/{case_id}/object");
        let head = self
            .s3
            .head_object()
            .bucket(quarantine)
            .key(&key)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{} not in quarantine at {key}: {e:?}\n{}",
                    object.key,
                    self.lambda.logs()
                )
            });
        assert_eq!(
            head.metadata()
                .and_then(|m| m.get(metadata::ORIGIN_KEY))
                .map(String::as_str),
            Some(object.key.as_str())
        );
        assert_eq!(
            get(&self.s3, quarantine, &key).await.as_deref(),
            Some(upload.body.as_slice()),
            "the quarantined copy of {}",
            object.key
        );
        let left = stored_versions(&self.s3, &object.bucket, &object.key).await;
        assert!(
            !left.contains(&upload.body),
            "{}: the listed content is still in the upload bucket\n{}",
            object.key,
            self.lambda.logs()
        );
    }

    /// `upload` was scanned clean: tagged so, its content untouched, no case for it.
    async fn assert_clean(&self, upload: &Upload) {
        let object = &upload.object;
        assert_eq!(
            tags(
                &self.s3,
                &object.bucket,
                &object.key,
                object.version_id.as_deref()
            )
            .await
            .get("hashgate-scan")
            .map(String::as_str),
            Some("clean"),
            "{} tagged clean\n{}",
            object.key,
            self.lambda.logs()
        );
        assert_eq!(
            get(&self.s3, &object.bucket, &object.key).await.as_deref(),
            Some(upload.body.as_slice()),
            "{} untouched",
            object.key
        );
        assert!(!self.cases().await.contains(&object.case_id()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn direct_s3_notifications_quarantine_a_match_and_tag_a_clean_object() {
    let mut f = Fixture::start().await;
    let listed = f.put("direct/listed item+1%.jpg", LISTED).await;
    let clean = f
        .put("direct/ünïcødé clean 🌞.txt", b"nothing to see")
        .await;

    // As S3 sends them: one record each, the key URL-encoded, no version id needed.
    let event = s3_notification(&listed, false);
    assert_eq!(
        event["Records"][0]["s3"]["object"]["key"],
        "direct/listed+item%2B1%25.jpg"
    );
    let result = f.lambda.invoke("direct S3 (listed)", &event).await;
    assert_eq!(result, Value::Null, "{}", f.lambda.logs());
    let result = f
        .lambda
        .invoke("direct S3 (clean)", &s3_notification(&clean, false))
        .await;
    assert_eq!(result, Value::Null, "{}", f.lambda.logs());

    f.assert_quarantined(&listed).await;
    f.assert_clean(&clean).await;
    assert_eq!(
        f.cases().await,
        vec![listed.object.case_id()],
        "{}",
        f.lambda.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sqs_batch_reports_only_the_malformed_message_as_failed() {
    let mut f = Fixture::start().await;
    let listed = f.put("sqs/listed item.jpg", LISTED).await;
    let clean = f.put("sqs/clean item.txt", b"fine").await;

    let batch = json!({"Records": [
        sqs_record("m1", &s3_notification(&listed, true).to_string()),
        sqs_record("m2", "{not json"),
        sqs_record("m3", &s3_notification(&clean, false).to_string()),
    ]});
    let result = f.lambda.invoke("SQS batch", &batch).await;
    assert_eq!(
        result,
        json!({"batchItemFailures": [{"itemIdentifier": "m2"}]}),
        "{}",
        f.lambda.logs()
    );

    f.assert_quarantined(&listed).await;
    f.assert_clean(&clean).await;
    assert_eq!(f.cases().await, vec![listed.object.case_id()]);
    let log = f.lambda.function_log();
    assert!(log.contains("malformed message"), "{log}");

    // The invocation's results as one CloudWatch embedded-metric line.
    let metrics: Vec<Value> = log
        .lines()
        .filter(|l| l.contains("CloudWatchMetrics"))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(metrics.len(), 1, "{log}");
    let m = &metrics[0];
    assert_eq!(m["_aws"]["CloudWatchMetrics"][0]["Namespace"], "hashgate");
    assert_eq!(m["FunctionName"], FUNCTION);
    assert_eq!(
        (m["Matched"].as_f64(), m["Clean"].as_f64()),
        (Some(1.0), Some(1.0))
    );
    assert!(m["FilterAgeHours"].as_f64().is_some_and(|h| h < 1.0), "{m}");
}

/// The zip `make package` built for `function`, unpacked into `dir` and checked: one
/// executable `bootstrap` needing no newer glibc than provided.al2023's 2.34.
fn unpack_packaged(function: &str, dir: &Path) -> PathBuf {
    let zip = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo_root().join("target"), PathBuf::from)
        .join(format!("lambda/{function}/bootstrap.zip"));
    assert!(
        zip.exists(),
        "{} is missing: run `make package` (make test does)",
        zip.display()
    );
    // Python's zipfile (from the project's virtual environment) lists and extracts it.
    let script = "import sys, zipfile, os\n\
                  z = zipfile.ZipFile(sys.argv[1])\n\
                  for i in z.infolist(): print(i.filename, oct((i.external_attr >> 16) & 0o777))\n\
                  z.extractall(sys.argv[2])\n\
                  os.chmod(os.path.join(sys.argv[2], 'bootstrap'), 0o755)\n";
    let out = Command::new(repo_root().join(".venv/bin/python"))
        .args(["-c", script])
        .arg(&zip)
        .arg(dir)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{listing}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries: Vec<&str> = listing.lines().collect();
    assert_eq!(entries.len(), 1, "{listing}");
    let (name, mode) = entries[0].split_once(' ').unwrap();
    assert_eq!(name, "bootstrap");
    assert!(mode == "0o755" || mode == "0o775", "bootstrap mode {mode}");

    let bootstrap = dir.join("bootstrap");
    let symbols = Command::new("objdump")
        .arg("-T")
        .arg(&bootstrap)
        .output()
        .expect("objdump (binutils) lists the glibc versions the binary needs");
    let text = String::from_utf8_lossy(&symbols.stdout);
    let newest = text
        .split("GLIBC_")
        .skip(1)
        .filter_map(|v| {
            let v: String = v
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
            Some((parts.next()?, parts.next().unwrap_or(0)))
        })
        .max()
        .expect("a dynamically linked binary needs some glibc version");
    assert!(
        newest <= (2, 34),
        "bootstrap needs glibc {}.{}, newer than provided.al2023's 2.34",
        newest.0,
        newest.1
    );
    bootstrap
}

/// The zip `make package` builds, as Lambda would run it: `bootstrap` at its root,
/// executable, needing no newer glibc than Amazon Linux 2023's (2.34), and working under
/// the runtime emulator.
#[tokio::test(flavor = "multi_thread")]
async fn the_packaged_zip_runs_as_the_function() {
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = unpack_packaged("scanner", dir.path());
    let mut f = Fixture::start_binary(&bootstrap).await;
    let listed = f.put("packaged/listed.jpg", LISTED).await;
    let clean = f.put("packaged/clean.txt", b"fine").await;
    let batch = json!({"Records": [
        sqs_record("p1", &s3_notification(&listed, false).to_string()),
        sqs_record("p2", &s3_notification(&clean, false).to_string()),
    ]});
    let result = f.lambda.invoke("SQS batch (packaged)", &batch).await;
    assert_eq!(
        result,
        json!({"batchItemFailures": []}),
        "{}",
        f.lambda.logs()
    );
    f.assert_quarantined(&listed).await;
    f.assert_clean(&clean).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn eventbridge_object_created_events_are_scanned() {
    let mut f = Fixture::start().await;
    // EventBridge carries keys as they are: a `+` is a plus, `%20` three characters.
    let listed = f.put("eventbridge/listed + item%20.jpg", LISTED).await;
    let clean = f.put("eventbridge/clean + item.txt", b"fine").await;

    let result = f
        .lambda
        .invoke("EventBridge (listed)", &eventbridge_event(&listed))
        .await;
    assert_eq!(result, Value::Null, "{}", f.lambda.logs());
    let result = f
        .lambda
        .invoke("EventBridge (clean)", &eventbridge_event(&clean))
        .await;
    assert_eq!(result, Value::Null, "{}", f.lambda.logs());

    f.assert_quarantined(&listed).await;
    f.assert_clean(&clean).await;
    assert_eq!(f.cases().await, vec![listed.object.case_id()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn test_events_and_unrecognised_payloads_succeed_and_change_nothing() {
    let mut f = Fixture::start().await;
    let listed = f.put("idle/listed.jpg", LISTED).await;

    let test_event = json!({
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2026-11-21T10:00:00.000Z",
        "Bucket": f.uploads,
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    });
    let result = f.lambda.invoke("s3:TestEvent", &test_event).await;
    assert_eq!(result, Value::Null, "{}", f.lambda.logs());
    // Not an event at all: nothing in it can be scanned and a retry cannot help, so the
    // scanner logs it and succeeds with no result.
    let result = f.lambda.invoke("non-event", &json!({"hello": 1})).await;
    assert_eq!(result, Value::Null, "{}", f.lambda.logs());

    let log = f.lambda.function_log();
    assert!(log.contains("s3:TestEvent acknowledged"), "{log}");
    assert!(log.contains("unrecognised invocation payload"), "{log}");
    assert_eq!(f.cases().await, Vec::<String>::new(), "{log}");
    assert_eq!(
        get(&f.s3, &f.uploads, &listed.object.key).await.as_deref(),
        Some(LISTED),
        "the listed object was not touched"
    );
    assert!(
        tags(
            &f.s3,
            &listed.object.bucket,
            &listed.object.key,
            listed.object.version_id.as_deref()
        )
        .await
        .is_empty(),
        "not scanned"
    );

    // The function is still serving: the next real event is handled.
    let result = f
        .lambda
        .invoke("direct S3 after them", &s3_notification(&listed, true))
        .await;
    assert_eq!(result, Value::Null, "{}", f.lambda.logs());
    f.assert_quarantined(&listed).await;
}

/// An API Gateway HTTP API (payload 2.0) request, as the review function receives it.
fn http_api_request(method: &str, path: &str, token: Option<&str>) -> Value {
    let mut headers = json!({"host": "review.example", "user-agent": "e2e"});
    if let Some(t) = token {
        headers["authorization"] = json!(format!("Bearer {t}"));
    }
    json!({
        "version": "2.0",
        "routeKey": "ANY /{proxy+}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "review.example",
            "domainPrefix": "review",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.9", "userAgent": "e2e"},
            "requestId": "r1",
            "routeKey": "ANY /{proxy+}",
            "stage": "$default",
            "time": "01/Dec/2026:10:00:00 +0000",
            "timeEpoch": 1_796_119_200_000_u64
        },
        "isBase64Encoded": false
    })
}

/// The review function under the runtime emulator, answering API Gateway HTTP API events
/// through `lambda_http`: health, sign-in refused and accepted, an unknown case.
#[tokio::test(flavor = "multi_thread")]
async fn the_review_function_answers_http_api_events() {
    let stack = Stack::start();
    let mut lambda = Lambda::start_named(&stack, &bin("review-api"), "review-api", &[]).await;
    let health = lambda
        .invoke("GET /healthz", &http_api_request("GET", "/healthz", None))
        .await;
    assert_eq!(health["statusCode"], 200, "{health}");
    let refused = lambda
        .invoke(
            "GET /api/cases without a token",
            &http_api_request("GET", "/api/cases", None),
        )
        .await;
    assert_eq!(refused["statusCode"], 401, "{refused}");
    let token = stack.sign_in("reviewer-a").await;
    let listed = lambda
        .invoke(
            "GET /api/cases",
            &http_api_request("GET", "/api/cases", Some(&token)),
        )
        .await;
    assert_eq!(listed["statusCode"], 200, "{listed}\n{}", lambda.logs());
    let body: Value = serde_json::from_str(listed["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["items"], json!([]));
    // A case that does not exist: 404, and nothing audited.
    let missing = lambda
        .invoke(
            "GET /api/cases/none",
            &http_api_request("GET", "/api/cases/case-none", Some(&token)),
        )
        .await;
    assert_eq!(missing["statusCode"], 404, "{missing}");
}

/// The report sender under the runtime emulator: it starts with its configuration and
/// answers EventBridge events; what is not a Report Ready event of its reports bucket is
/// ignored, with the reason (the sending itself is `tests/e2e/reports.rs`'s).
#[tokio::test(flavor = "multi_thread")]
async fn the_report_sender_takes_eventbridge_events() {
    let stack = Stack::start();
    let reports_bucket = stack.var("HASHGATE_REPORTS_BUCKET").to_string();
    let mut lambda = Lambda::start_named(
        &stack,
        &bin("report-sender"),
        "report-sender",
        &[
            ("HASHGATE_REPORTS_BUCKET", reports_bucket.as_str()),
            ("HASHGATE_CYBERTIP_SECRET", "hashgate/cybertip"),
            ("HASHGATE_CYBERTIP_ENDPOINT", "http://127.0.0.1:9/ispws"),
        ],
    )
    .await;
    let event = |detail_type: &str, bucket: &str| {
        json!({
            "version": "0",
            "id": "0d7a4b8c-4e2f-4c55-9d43-7f1d0c2e9a11",
            "detail-type": detail_type,
            "source": "hashgate",
            "account": "123456789012",
            "time": "2026-12-01T12:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {
                "case_id": "case-0123abcd",
                "bucket": bucket,
                "prefix": "reports/case-0123abcd/",
                "classification": "A1",
                "file_viewed_by_esp": false,
                "built_at": "2026-12-01T11:59:00Z"
            }
        })
    };
    let ignored = lambda
        .invoke("Case Opened", &event("Case Opened", &reports_bucket))
        .await;
    assert!(
        ignored["ignored"]
            .as_str()
            .is_some_and(|why| why.contains("Case Opened")),
        "{ignored}\n{}",
        lambda.logs()
    );
    let ignored = lambda
        .invoke("another bucket's", &event("Report Ready", "elsewhere"))
        .await;
    assert!(
        ignored["ignored"]
            .as_str()
            .is_some_and(|why| why.contains("elsewhere")),
        "{ignored}"
    );
}

/// The review function's packaged zip answers HTTP API events too.
#[tokio::test(flavor = "multi_thread")]
async fn the_packaged_review_zip_runs_as_the_function() {
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = unpack_packaged("review-api", dir.path());
    let stack = Stack::start();
    let mut lambda = Lambda::start_named(&stack, &bootstrap, "review-api", &[]).await;
    let token = stack.sign_in("admin-a").await;
    let verified = lambda
        .invoke(
            "GET /api/audit/verify (packaged)",
            &http_api_request("GET", "/api/audit/verify", Some(&token)),
        )
        .await;
    assert_eq!(verified["statusCode"], 200, "{verified}\n{}", lambda.logs());
}
