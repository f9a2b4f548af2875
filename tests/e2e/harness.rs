//! The end-to-end harness: a private local stack (the moto emulator on a free loopback port,
//! created from `infra/template.yaml` by `scripts/localstack.py`), the real `hashgate` and
//! `scanner` binaries, and SDK clients pointed at the stack.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{Region, SdkConfig};
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::error::ProvideErrorMetadata;
use hashgate_core::digest::{digest_bytes, Algorithm, AlgorithmSet};
use hashgate_core::event::ObjectRef;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A binary of the workspace, from the same profile as the running program: a test runs from
/// `target/<profile>/deps/` (and `cargo test` builds every binary before any test runs), a
/// benchmark from `target/<profile>/`.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("executable path");
    let mut dir = exe.parent().expect("executable directory");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("target/<profile>");
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (cargo test --workspace --all-targets does)",
        path.display()
    );
    path
}

/// A local stack of its own, stopped when dropped.
pub struct Stack {
    state: tempfile::TempDir,
    env: HashMap<String, String>,
}

impl Stack {
    pub fn start() -> Stack {
        Self::start_with(&[])
    }

    /// Start with template parameters, e.g. `TriggerMode=EventBridge`.
    pub fn start_with(params: &[&str]) -> Stack {
        let root = repo_root();
        let python = root.join(".venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run `make venv` (make test does)",
            python.display()
        );
        let state = tempfile::tempdir().expect("state dir");
        let mut cmd = Command::new(&python);
        cmd.current_dir(&root)
            .arg("scripts/localstack.py")
            .args(["up", "--port", "0", "--state-dir"])
            .arg(state.path());
        for p in params {
            cmd.args(["--param", p]);
        }
        let out = cmd.output().expect("run scripts/localstack.py");
        assert!(
            out.status.success(),
            "local stack failed to start:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(state.path().join("stack.env")).expect("stack.env");
        let env = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| {
                (
                    k.trim().trim_start_matches("export ").to_string(),
                    v.trim().trim_matches('"').trim_matches('\'').to_string(),
                )
            })
            .collect();
        Stack { state, env }
    }

    /// The emulator's process id (to pause it: a case store that stops answering).
    pub fn emulator_pid(&self) -> u32 {
        std::fs::read_to_string(self.state.path().join("moto.pid"))
            .expect("moto.pid")
            .trim()
            .parse()
            .expect("a process id")
    }

    /// A variable of `stack.env`.
    pub fn var(&self, name: &str) -> &str {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from stack.env"))
    }

    pub fn env(&self) -> &HashMap<String, String> {
        &self.env
    }

    /// The stack's state directory (`stack.env`, `review-users.json`, the emulator's log).
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// A command with the stack's environment (and nothing of the caller's AWS settings).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") || k.starts_with("HASHGATE_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(&self.env);
        cmd
    }

    /// SDK configuration for the stack, independent of this process's environment.
    pub async fn sdk(&self) -> SdkConfig {
        hashgate_aws::config_loader()
            .endpoint_url(self.var("AWS_ENDPOINT_URL"))
            .region(Region::new(self.var("AWS_REGION").to_string()))
            .credentials_provider(Credentials::new("test", "test", None, None, "e2e"))
            .load()
            .await
    }

    /// The scanner as a local worker on the scan queue.
    pub fn worker(&self, extra: &[(&str, &str)]) -> Worker {
        let mut vars = vec![("HASHGATE_FILTER_REFRESH_SECONDS", "1")];
        vars.extend_from_slice(extra);
        self.spawn("scanner", &vars)
    }

    /// hashlist-sync as a local worker on the lists queue, its scheduled work every 2 s
    /// unless `extra` says otherwise.
    pub fn sync_worker(&self, extra: &[(&str, &str)]) -> Worker {
        let mut vars = vec![("HASHGATE_SYNC_INTERVAL_SECONDS", "2")];
        vars.extend_from_slice(extra);
        self.spawn("hashlist-sync", &vars)
    }

    /// A workspace binary as a worker on the stack, logging to a file of the state directory.
    fn spawn(&self, binary: &str, extra: &[(&str, &str)]) -> Worker {
        let log = self
            .state
            .path()
            .join(format!("{binary}-{}.log", now_nanos()));
        let file = std::fs::File::create(&log).expect("worker log");
        let child = self
            .command(bin(binary))
            .env("HASHGATE_LOG", "info")
            .envs(extra.iter().copied())
            .stdout(Stdio::from(file.try_clone().expect("log handle")))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary}: {e}"));
        Worker {
            child,
            log,
            name: binary.to_string(),
        }
    }
}

/// The review function as a local server on the stack, stopped when dropped.
pub struct ReviewApi {
    child: Child,
    log: PathBuf,
    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub url: String,
}

impl ReviewApi {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The server's process id (its memory is in `/proc/<pid>/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ReviewApi {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- review-api log ---\n{}--- end ---", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Does `GET <url>` answer 200 (plain HTTP/1.1 on loopback, no client library needed)?
fn answers_ok(url: &str) -> bool {
    use std::io::{Read, Write};
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let Some(addr) = std::net::ToSocketAddrs::to_socket_addrs(authority)
        .ok()
        .and_then(|mut a| a.next())
    else {
        return false;
    };
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    let mut head = [0u8; 12];
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_exact(&mut head).is_ok()
        && &head[9..12] == b"200"
}

impl Stack {
    /// Start the `review-api` binary on the stack's `HASHGATE_REVIEW_BIND` and wait until it
    /// answers on `/healthz`.
    pub fn review_api(&self, extra: &[(&str, &str)]) -> ReviewApi {
        let log = self
            .state
            .path()
            .join(format!("review-api-{}.log", now_nanos()));
        let file = std::fs::File::create(&log).expect("review-api log");
        let child = self
            .command(bin("review-api"))
            .env("HASHGATE_LOG", "info")
            .envs(extra.iter().copied())
            .stdout(Stdio::from(file.try_clone().expect("log handle")))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("start review-api");
        let mut api = ReviewApi {
            child,
            log,
            url: self
                .var("HASHGATE_REVIEW_URL")
                .trim_end_matches('/')
                .to_string(),
        };
        let start = Instant::now();
        loop {
            if let Some(status) = api.child.try_wait().expect("review-api status") {
                panic!(
                    "review-api exited ({status}) before it answered:\n{}",
                    api.log()
                );
            }
            if answers_ok(&format!("{}/healthz", api.url)) {
                return api;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "review-api did not answer on {}/healthz within 30 s:\n{}",
                api.url,
                api.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The review users' passwords (`review-users.json`).
    pub fn review_users(&self) -> HashMap<String, String> {
        let path = self.state.path().join("review-users.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).expect("review-users.json is a JSON object")
    }

    /// Sign `user` in against the stack's user pool as the page does (`InitiateAuth`,
    /// `USER_PASSWORD_AUTH`); its access token.
    pub async fn sign_in(&self, user: &str) -> String {
        let password = self.review_users()[user].clone();
        let response = reqwest::Client::new()
            .post(format!(
                "{}/",
                self.var("HASHGATE_IDP_ENDPOINT").trim_end_matches('/')
            ))
            .header("content-type", "application/x-amz-json-1.1")
            .header(
                "x-amz-target",
                "AWSCognitoIdentityProviderService.InitiateAuth",
            )
            .body(
                serde_json::json!({
                    "AuthFlow": "USER_PASSWORD_AUTH",
                    "ClientId": self.var("HASHGATE_USER_POOL_CLIENT_ID"),
                    "AuthParameters": {"USERNAME": user, "PASSWORD": password},
                })
                .to_string(),
            )
            .send()
            .await
            .expect("InitiateAuth");
        let status = response.status();
        let body: serde_json::Value = response.json().await.expect("InitiateAuth answer");
        assert!(
            status.is_success(),
            "sign-in of {user} failed: {status} {body}"
        );
        body["AuthenticationResult"]["AccessToken"]
            .as_str()
            .expect("an access token")
            .to_string()
    }

    /// A token signed with the identity provider emulator's own key, with any claims: for
    /// tokens it would never issue (expired, another pool's).
    pub fn forge_token(&self, claims: &serde_json::Value) -> String {
        use std::io::Write;
        let mut child = Command::new(repo_root().join(".venv/bin/python"))
            .arg(repo_root().join("tests/e2e/sign_token.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run sign_token.py");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(claims.to_string().as_bytes())
            .expect("write claims");
        let out = child.wait_with_output().expect("sign_token.py");
        assert!(out.status.success(), "sign_token.py failed");
        String::from_utf8(out.stdout)
            .expect("token")
            .trim()
            .to_string()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join(".venv/bin/python"))
            .current_dir(repo_root())
            .arg("scripts/localstack.py")
            .args(["down", "--state-dir"])
            .arg(self.state.path())
            .output();
    }
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// A running scanner worker, stopped when dropped.
pub struct Worker {
    child: Child,
    log: PathBuf,
    name: String,
}

impl Worker {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Send `signal` (e.g. `TERM`, `KILL`) to the worker.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {}", self.child.id());
    }

    /// Wait up to `timeout` for the worker to exit; its status, or None if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(status) = self.child.try_wait().expect("worker status") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- {} worker log ---\n{}--- end ---",
                self.name,
                self.log()
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll `check` until it returns `Some`, or panic after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Hex digest of `data`.
pub fn hex_digest(algorithm: Algorithm, data: &[u8]) -> String {
    digest_bytes(data, AlgorithmSet::EMPTY.with(algorithm))
        .get(algorithm)
        .expect("computed")
        .to_hex()
}

pub fn md5_hex(data: &[u8]) -> String {
    hex_digest(Algorithm::Md5, data)
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex_digest(Algorithm::Sha256, data)
}

/// Import a list naming `md5s` by MD5 and `sha256s` by SHA-256 into the stack with the real
/// CLI (no `--db`: the stack's DynamoDB store, and a published filter).
pub fn import_list(stack: &Stack, md5s: &[&[u8]], sha256s: &[&[u8]]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let list = dir.path().join("e2e-list.txt");
    let mut text = String::from("# e2e\n");
    for c in md5s {
        text.push_str(&format!("{}\n", md5_hex(c)));
    }
    for c in sha256s {
        text.push_str(&format!("{}\n", sha256_hex(c)));
    }
    std::fs::write(&list, text).expect("write the list");
    let out = stack
        .command(bin("hashgate"))
        .args(["lists", "import"])
        .arg(&list)
        .output()
        .expect("run hashgate");
    assert!(
        out.status.success(),
        "import failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("filter: s3://"), "{stdout}");
}

/// A local hash database in `dir` (`hashgate lists import --db`) listing the MD5 of each of
/// `bodies`, as a self-hosted worker keeps its lists. One per worker process: the embedded
/// store is one process's at a time.
pub fn local_db(stack: &Stack, dir: &Path, bodies: &[&[u8]]) -> PathBuf {
    std::fs::create_dir_all(dir).expect("the database's directory");
    let list = dir.with_extension("list.txt");
    let text: String = bodies.iter().map(|b| format!("{}\n", md5_hex(b))).collect();
    std::fs::write(&list, text).expect("write the list");
    let out = stack
        .command(bin("hashgate"))
        .args(["lists", "import", "--db"])
        .arg(dir)
        .arg(&list)
        .output()
        .expect("run hashgate");
    assert!(
        out.status.success(),
        "import into {}: {}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    dir.to_path_buf()
}

/// Upload the objects `key(i)` and `body(i)` for each `i` of `uploads`, `at_once` at a time;
/// the rate in PUTs a second. A failed PUT is retried every half second (the store may be
/// paused or starting again) for a minute.
pub async fn upload_many(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    uploads: std::ops::Range<u64>,
    at_once: usize,
    key: fn(u64) -> String,
    body: impl Fn(u64) -> Vec<u8>,
) -> f64 {
    let started = Instant::now();
    let n = uploads.end - uploads.start;
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(at_once));
    let mut puts = tokio::task::JoinSet::new();
    for i in uploads {
        let slot = slots.clone().acquire_owned().await.expect("a slot");
        let (s3, bucket, body) = (s3.clone(), bucket.to_string(), body(i));
        puts.spawn(async move {
            let _slot = slot;
            let mut tries = 0;
            while let Err(e) = s3
                .put_object()
                .bucket(&bucket)
                .key(key(i))
                .body(body.clone().into())
                .send()
                .await
            {
                tries += 1;
                assert!(tries < 120, "put {}: {e:?}", key(i));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        while let Some(done) = puts.try_join_next() {
            done.expect("an upload");
        }
    }
    while let Some(done) = puts.join_next().await {
        done.expect("an upload");
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Write a long program's figures to `target/<name>.json` (with this machine's CPU) and
/// print them.
pub fn record(name: &str, mut figures: serde_json::Value) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| {
        c.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|m| m.trim().to_string())
    });
    figures["cpu"] = serde_json::json!(cpu);
    figures["profile"] = serde_json::json!(if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    });
    println!("{name}: {figures}");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    std::fs::write(
        target.join(format!("{name}.json")),
        serde_json::to_string_pretty(&figures).expect("JSON"),
    )
    .expect("write the figures");
}

/// Upload `body` and return exactly which object version it became.
pub async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &[u8]) -> ObjectRef {
    let out = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
    ObjectRef {
        bucket: bucket.into(),
        key: key.into(),
        version_id: out.version_id().map(str::to_string),
        etag: out.e_tag().map(|e| e.trim_matches('"').to_string()),
    }
}

/// The current object's bytes, if any.
pub async fn get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let out = s3.get_object().bucket(bucket).key(key).send().await.ok()?;
    Some(out.body.collect().await.ok()?.into_bytes().to_vec())
}

/// The tags of an object (a given version, or the current one); empty if it is gone.
pub async fn tags(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> BTreeMap<String, String> {
    let request = s3
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_string));
    match request.send().await {
        Ok(out) => out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

/// The contents of every version of `key` still stored in `bucket`.
pub async fn stored_versions(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<Vec<u8>> {
    let out = s3
        .list_object_versions()
        .bucket(bucket)
        .prefix(key)
        .send()
        .await
        .expect("list versions");
    let mut contents = Vec::new();
    for v in out.versions() {
        if v.key() != Some(key) {
            continue;
        }
        let body = s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .version_id(v.version_id().expect("a version id"))
            .send()
            .await
            .expect("get a version");
        contents.push(
            body.body
                .collect()
                .await
                .expect("body")
                .into_bytes()
                .to_vec(),
        );
    }
    contents
}

/// Every case id in the case table, sorted.
/// The ids of the cases in the case table.
pub async fn case_ids(dynamo: &aws_sdk_dynamodb::Client, table: &str) -> Vec<String> {
    let out = dynamo
        .scan()
        .table_name(table)
        .send()
        .await
        .expect("scan cases");
    let mut ids: Vec<String> = out
        .items()
        .iter()
        .filter_map(|i| i.get("case_id")?.as_s().ok().cloned())
        // The table also holds the reviewers' reveal tallies.
        .filter(|id| !id.starts_with("reveals#"))
        .collect();
    ids.sort();
    ids
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    free_ports::<1>(&[])[0]
}

/// `N` distinct free loopback ports, none of them in `taken`: every listener is held until
/// all are picked, so a server given several ports never gets the same one twice.
pub fn free_ports<const N: usize>(taken: &[u16]) -> [u16; N] {
    let mut held = Vec::new();
    let mut ports = [0u16; N];
    let mut i = 0;
    while i < N {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("its address").port();
        held.push(listener);
        if !taken.contains(&port) {
            ports[i] = port;
            i += 1;
        }
    }
    ports
}

/// A SeaweedFS server of its own (`weed mini` from `.venv`: master, volume server, filer and
/// S3 gateway, every port on 127.0.0.1), its filer's webhook notifier posting to `webhook`
/// with `token`. Stopped when dropped.
pub struct Seaweed {
    child: Child,
    _dir: tempfile::TempDir,
    log: PathBuf,
    /// The S3 gateway, e.g. `http://127.0.0.1:40123`.
    pub s3_endpoint: String,
}

impl Seaweed {
    pub fn start(webhook: &str, token: &str) -> Seaweed {
        let weed = repo_root().join(".venv/bin/weed");
        assert!(
            weed.exists(),
            "{} is missing: run `make venv` (make test does)",
            weed.display()
        );
        let dir = tempfile::tempdir().expect("a SeaweedFS directory");
        std::fs::create_dir(dir.path().join("data")).expect("data dir");
        // The filer reads notification.toml from its working directory.
        std::fs::write(
            dir.path().join("notification.toml"),
            format!(
                "[notification.webhook]\nenabled = true\nendpoint = \"{webhook}\"\n\
                 bearer_token = \"{token}\"\nevent_types = [\"create\", \"update\", \"rename\"]\n\
                 backoff_seconds = 1\nmax_backoff_seconds = 5\nmax_retries = 10\n"
            ),
        )
        .expect("notification.toml");
        let log = dir.path().join("weed.log");
        let file = std::fs::File::create(&log).expect("weed log");
        // The webhook's port is free until the worker starts: keep SeaweedFS off it.
        let webhook_port = webhook
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|authority| authority.rsplit(':').next())
            .and_then(|port| port.parse::<u16>().ok())
            .unwrap_or(0);
        let ports = free_ports::<10>(&[webhook_port]);
        let s3_port = ports[0];
        let mut cmd = Command::new(&weed);
        cmd.current_dir(dir.path())
            .arg("mini")
            .arg(format!("-dir={}", dir.path().join("data").display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .args(["-webdav=false", "-admin.ui=false"])
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
            // Left to itself, mini sizes volumes by the free disk space (up to 1 GiB each) and
            // allows free space / size of them, while every bucket is a collection that grows
            // seven volumes at once: on a machine with a few GiB free the third bucket found
            // no volume to write to. Small volumes, a fixed count, one grown at a time.
            .args(["-master.volumeSizeLimitMB=32", "-volume.max=64"])
            .env("WEED_MASTER_VOLUME_GROWTH_COPY_1", "1")
            .arg("-master.telemetry=false")
            .arg(format!("-s3.port={s3_port}"));
        let mut next = ports[1..].iter();
        for server in ["master", "volume", "filer", "s3", "admin"] {
            if server != "s3" {
                cmd.arg(format!("-{server}.port={}", next.next().unwrap()));
            }
            cmd.arg(format!("-{server}.port.grpc={}", next.next().unwrap()));
        }
        let child = cmd
            .stdout(Stdio::from(file.try_clone().expect("log handle")))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("start weed mini");
        let mut seaweed = Seaweed {
            child,
            _dir: dir,
            log,
            s3_endpoint: format!("http://127.0.0.1:{s3_port}"),
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", s3_port)).is_err() {
            if let Some(status) = seaweed.child.try_wait().expect("weed status") {
                panic!("weed mini exited ({status}):\n{}", seaweed.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "SeaweedFS's S3 gateway did not listen within a minute:\n{}",
                seaweed.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        seaweed
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An S3 client for the gateway (it takes any credentials unless configured otherwise),
    /// once the store takes writes: the gateway listens before the master has its volume
    /// server, so an object is written to a bucket of its own (its events go nowhere: the
    /// webhook does not listen yet) until that succeeds.
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let sdk = crate::config_loader_for(&self.s3_endpoint).await;
        let s3 = hashgate_aws::s3_client(&sdk);
        let start = Instant::now();
        let mut last: String;
        loop {
            match s3.create_bucket().bucket("hashgate-probe").send().await {
                Err(e)
                    if !matches!(
                        e.code(),
                        Some("BucketAlreadyExists" | "BucketAlreadyOwnedByYou")
                    ) =>
                {
                    last = format!("create bucket: {e:?}")
                }
                _ => match s3
                    .put_object()
                    .bucket("hashgate-probe")
                    .key("probe")
                    .body(vec![7u8; 64 * 1024].into())
                    .send()
                    .await
                {
                    Ok(_) => return s3,
                    Err(e) => last = format!("put: {e:?}"),
                },
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "SeaweedFS took no write within 90 s ({last}):\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- SeaweedFS log ---\n{}--- end ---", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SDK configuration for an S3-compatible endpoint, with dummy credentials.
pub async fn config_loader_for(endpoint: &str) -> SdkConfig {
    hashgate_aws::config_loader()
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "e2e"))
        .load()
        .await
}

/// A RabbitMQ broker of its own (Debian's `rabbitmq-server`, which `make test` installs):
/// AMQP, the Erlang distribution and its port mapper all on 127.0.0.1 ports of their own,
/// state in a temporary directory. Stopped when dropped.
pub struct Rabbit {
    child: Child,
    dir: tempfile::TempDir,
    epmd_port: u16,
    /// `amqp://guest:guest@127.0.0.1:<port>/%2f`.
    pub url: String,
    /// The AMQP port.
    pub port: u16,
}

impl Rabbit {
    pub fn start() -> Rabbit {
        let server = Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server");
        assert!(
            server.exists(),
            "{} is missing: install Debian's rabbitmq-server (make test does)",
            server.display()
        );
        let dir = tempfile::tempdir().expect("a RabbitMQ directory");
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n").expect("plugins file");
        let [amqp, dist, epmd_port] = free_ports::<3>(&[]);
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log");
        let child = Command::new(server)
            .env("RABBITMQ_NODENAME", format!("hashgate{amqp}@localhost"))
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", amqp.to_string())
            .env("RABBITMQ_DIST_PORT", dist.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("ERL_EPMD_PORT", epmd_port.to_string())
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            )
            .env("RABBITMQ_MNESIA_BASE", dir.path().join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.path().join("log"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                dir.path().join("enabled_plugins"),
            )
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start rabbitmq-server");
        let mut rabbit = Rabbit {
            child,
            dir,
            epmd_port,
            url: format!("amqp://guest:guest@127.0.0.1:{amqp}/%2f"),
            port: amqp,
        };
        let start = Instant::now();
        while !rabbit.log().contains("Starting broker... completed") {
            if let Some(status) = rabbit.child.try_wait().expect("broker status") {
                panic!("rabbitmq-server exited ({status}):\n{}", rabbit.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "RabbitMQ did not start within two minutes:\n{}",
                rabbit.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        rabbit
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Rabbit {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- RabbitMQ log ---\n{}--- end ---", self.log());
        }
        // The server script stops the broker on SIGTERM (a SIGKILL would orphan it).
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The port mapper outlives the broker unless told to stop.
        let _ = Command::new("epmd")
            .arg("-kill")
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Go's `url.QueryEscape`, as MinIO applies it to the keys of its notifications.
pub fn query_escape(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The notification Ceph RGW sends for an upload of `object` (`size` bytes): its record
/// format 2.2, the key as it is, the size as a string, an empty version id when unversioned.
pub fn ceph_notification(object: &ObjectRef, size: usize) -> serde_json::Value {
    serde_json::json!({"Records": [{
        "eventVersion": "2.2", "eventSource": "ceph:s3", "awsRegion": "default",
        "eventTime": "2026-12-01T10:00:00.000000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "uploader"},
        "requestParameters": {"sourceIPAddress": ""},
        "responseElements": {"x-amz-request-id": "r", "x-amz-id-2": "z"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "hashgate",
            "bucket": {"name": object.bucket, "ownerIdentity": {"principalId": "owner"},
                "arn": format!("arn:aws:s3:default::{}", object.bucket), "id": "b.1"},
            "object": {"key": object.key, "size": size.to_string(),
                "eTag": object.etag.clone().unwrap_or_default(),
                "versionId": object.version_id.clone().unwrap_or_default(),
                "sequencer": "5C26D26734E2C21D", "metadata": [], "tags": []}},
        "eventId": "", "opaqueData": ""}]})
}

/// Upload `parts` as one multipart upload (every part but the last at least 5 MiB) and
/// return the object version it became, with its multipart ETag.
pub async fn put_multipart(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    parts: &[&[u8]],
) -> ObjectRef {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let upload = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create multipart {key}: {e:?}"));
    let id = upload.upload_id().expect("an upload id");
    let mut done = Vec::new();
    for (i, body) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let part = s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .part_number(n)
            .body(aws_sdk_s3::primitives::ByteStream::from(body.to_vec()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("upload part {n} of {key}: {e:?}"));
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(part.e_tag().expect("a part ETag"))
                .build(),
        );
    }
    let out = s3
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("complete multipart {key}: {e:?}"));
    ObjectRef {
        bucket: bucket.into(),
        key: key.into(),
        version_id: out.version_id().map(str::to_string),
        etag: out.e_tag().map(|e| e.trim_matches('"').to_string()),
    }
}

/// A single-node Ceph cluster of its own with its S3 gateway (`scripts/ceph.sh`: a monitor,
/// a memstore OSD and RGW from Debian's packages, on loopback ports), and an S3 user.
/// Stopped when dropped.
pub struct Ceph {
    dir: tempfile::TempDir,
    /// The gateway, e.g. `http://127.0.0.1:40123`.
    pub endpoint: String,
}

impl Ceph {
    pub const ACCESS_KEY: &'static str = "HASHGATECEPHACCESS01";
    pub const SECRET_KEY: &'static str = "hashgate-ceph-secret-key-0123456789abcdef";

    pub fn start() -> Ceph {
        assert!(
            Path::new("/usr/bin/radosgw").exists(),
            "/usr/bin/radosgw is missing: install Debian's ceph-mon, ceph-osd and radosgw \
             (make test does)"
        );
        let dir = tempfile::tempdir().expect("a Ceph directory");
        let [mon, rgw] = free_ports::<2>(&[]);
        let out = Command::new(repo_root().join("scripts/ceph.sh"))
            .arg("start")
            .arg(dir.path())
            .args([mon.to_string(), rgw.to_string()])
            .args([Self::ACCESS_KEY, Self::SECRET_KEY])
            .output()
            .expect("run scripts/ceph.sh");
        let ceph = Ceph {
            dir,
            endpoint: format!("http://127.0.0.1:{rgw}"),
        };
        assert!(
            out.status.success(),
            "Ceph did not start:\n{}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            ceph.log()
        );
        ceph
    }

    /// The gateway's and the OSD's logs, their last lines.
    pub fn log(&self) -> String {
        let mut out = String::new();
        for name in ["client.rgw.a", "osd.0", "mon.a"] {
            let text = std::fs::read_to_string(self.dir.path().join(format!("log/{name}.log")))
                .unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            out.push_str(&format!("--- {name} ---\n{}\n", tail.join("\n")));
        }
        out
    }

    /// The gateway's process id (to pause it: a store that stops answering).
    pub fn rgw_pid(&self) -> u32 {
        std::fs::read_to_string(self.dir.path().join("run/client.rgw.a.pid"))
            .expect("RGW's pid file")
            .trim()
            .parse()
            .expect("a process id")
    }

    /// Start the gateway again after it died, as a service manager would (the cluster, its
    /// buckets, users and topics live on); its new process id once it answers.
    pub fn restart_gateway(&self) -> u32 {
        let port = self
            .endpoint
            .rsplit(':')
            .next()
            .expect("the gateway's port");
        let out = Command::new(repo_root().join("scripts/ceph.sh"))
            .arg("gateway")
            .arg(self.dir.path())
            .arg(port)
            .output()
            .expect("run scripts/ceph.sh");
        assert!(
            out.status.success(),
            "radosgw did not start again:\n{}{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        self.rgw_pid()
    }

    /// Create `buckets`; one named `quarantine` gets Object Lock.
    pub async fn buckets(&self, s3: &aws_sdk_s3::Client, buckets: &[&str]) {
        for &bucket in buckets {
            s3.create_bucket()
                .bucket(bucket)
                .object_lock_enabled_for_bucket(bucket == "quarantine")
                .send()
                .await
                .unwrap_or_else(|e| panic!("create {bucket}: {e:?}"));
        }
    }

    /// What a scanner worker on this cluster needs beside its ingress: RGW's S3 API and
    /// user (the local stack's DynamoDB takes any credentials), the hash database `db`, and
    /// the `quarantine` bucket.
    pub fn worker_env<'a>(&'a self, db: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("AWS_ENDPOINT_URL_S3", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", Self::ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", Self::SECRET_KEY),
            ("HASHGATE_HASH_TABLE", ""),
            ("HASHGATE_DB", db),
            ("HASHGATE_QUARANTINE_BUCKET", "quarantine"),
        ]
    }

    /// `bucket`'s object-created events published to `rabbit` on `exchange`, with `topic`
    /// as the routing key (RGW connects as RabbitMQ's guest user, loopback only).
    pub fn notify_amqp(&self, bucket: &str, topic: &str, rabbit: &Rabbit, exchange: &str) {
        self.notify(
            bucket,
            topic,
            &format!("amqp://127.0.0.1:{}", rabbit.port),
            &[
                &format!("amqp-exchange={exchange}"),
                "amqp-ack-level=broker",
            ],
        );
    }

    /// An S3 client for the gateway, as the S3 user.
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let sdk = hashgate_aws::config_loader()
            .region(Region::new("default"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new(
                Self::ACCESS_KEY,
                Self::SECRET_KEY,
                None,
                None,
                "ceph",
            ))
            .load()
            .await;
        hashgate_aws::s3_client(&sdk)
    }

    /// A topic pushing to `push_endpoint` (with `attributes`), and `bucket`'s object-created
    /// events sent to it, through RGW's SNS API as an operator would.
    pub fn notify(&self, bucket: &str, topic: &str, push_endpoint: &str, attributes: &[&str]) {
        let out = Command::new(repo_root().join(".venv/bin/python"))
            .arg(repo_root().join("scripts/ceph_notify.py"))
            .args([&self.endpoint, Self::ACCESS_KEY, Self::SECRET_KEY])
            .args([bucket, topic, push_endpoint])
            .args(attributes)
            .output()
            .expect("run scripts/ceph_notify.py");
        assert!(
            out.status.success(),
            "topic {topic} for {bucket}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }
}

impl Drop for Ceph {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log());
        }
        let _ = Command::new(repo_root().join("scripts/ceph.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}
