//! The review queue on the local stack: the `review-api` binary against the emulator's
//! DynamoDB, S3, KMS and Cognito user pool, with cases the scanner made from real uploads.
//! Sign-in on every route; previews, reveals and decisions through HTTP; a false positive
//! restored byte for byte; and `hashgate audit verify` on the chain, untouched and tampered.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::primitives::ByteStream;
use hashgate_core::event::ObjectRef;
use hashgate_e2e::{bin, case_ids, eventually, get, md5_hex, put, tags, Stack};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(90);

fn image(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        let v = ((x * 31 + y * 17 + seed * 101) ^ (x * y + seed)) % 256;
        image::Rgb([v as u8, ((x + seed) % 256) as u8, ((y * 3) % 256) as u8])
    });
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("encode");
    png
}

fn import(stack: &Stack, contents: &[&[u8]]) {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("review.csv");
    let mut text = String::from("md5,category,id\n");
    for (i, c) in contents.iter().enumerate() {
        text.push_str(&format!("{},A1,E2E-{i}\n", md5_hex(c)));
    }
    std::fs::write(&list, text).unwrap();
    let out = stack
        .command(bin("hashgate"))
        .args(["lists", "import", "--list", "e2e-review"])
        .arg(&list)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, HashMap<String, String>, Vec<u8>) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let response = req.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        (status, headers, response.bytes().await.unwrap().to_vec())
    }

    async fn json(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, _, bytes) = self.send(method, path, Some(token), body).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

fn audit_verify(stack: &Stack) -> (i32, String) {
    let out = stack
        .command(bin("hashgate"))
        .args(["audit", "verify"])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_needs_a_valid_token_of_the_right_role() {
    let stack = Stack::start();
    let api = stack.review_api(&[]);
    let client = Client {
        http: reqwest::Client::new(),
        base: api.url.clone(),
    };
    let issuer = format!(
        "https://cognito-idp.{}.amazonaws.com/{}",
        stack.var("AWS_REGION"),
        stack.var("HASHGATE_USER_POOL_ID")
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = |iss: &str, exp: i64, groups: &[&str]| {
        json!({"iss": iss, "sub": "s", "username": "reviewer-a", "token_use": "access",
               "client_id": stack.var("HASHGATE_USER_POOL_CLIENT_ID"), "exp": exp,
               "iat": exp - 3600, "cognito:groups": groups})
    };
    // The forging works: a token like the pool's own is accepted…
    let like_the_pools = stack.forge_token(&claims(&issuer, now + 600, &["reviewer"]));
    let (status, _) = client
        .json("GET", "/api/cases", &like_the_pools, None)
        .await;
    assert_eq!(status, 200);
    // …so these are refused for the one thing wrong with each.
    let expired = stack.forge_token(&claims(&issuer, now - 5, &["reviewer"]));
    let other_pool = stack.forge_token(&claims(
        &format!(
            "https://cognito-idp.{}.amazonaws.com/us-east-1_Other",
            stack.var("AWS_REGION")
        ),
        now + 600,
        &["reviewer"],
    ));
    let no_group = stack.forge_token(&claims(&issuer, now + 600, &[]));
    let reviewer = stack.sign_in("reviewer-a").await;
    let admin = stack.sign_in("admin-a").await;
    let mut tampered = reviewer.clone();
    tampered.pop();
    tampered.push(if reviewer.ends_with('A') { 'B' } else { 'A' });
    let routes = [
        ("GET", "/api/me"),
        ("GET", "/api/cases"),
        ("GET", "/api/cases/case-x"),
        ("GET", "/api/cases/case-x/preview"),
        ("POST", "/api/cases/case-x/reveal"),
        ("POST", "/api/cases/case-x/decision"),
        ("GET", "/api/audit/verify"),
    ];
    for (method, path) in routes {
        let body = (method == "POST").then(|| json!({"reason": "r", "decision": "escalate"}));
        for (what, token) in [
            ("no token", None),
            ("an expired token", Some(expired.as_str())),
            ("another pool's token", Some(other_pool.as_str())),
            ("a tampered token", Some(tampered.as_str())),
        ] {
            let (status, headers, _) = client.send(method, path, token, body.clone()).await;
            assert_eq!(status, 401, "{method} {path} with {what}");
            assert!(headers.contains_key("www-authenticate"));
        }
        let (status, _, _) = client.send(method, path, Some(&no_group), body).await;
        assert_eq!(status, 403, "{method} {path} in no group");
    }
    let (status, v) = client
        .json("GET", "/api/audit/verify", &reviewer, None)
        .await;
    assert_eq!(status, 403, "{v}");
    let (status, v) = client.json("GET", "/api/audit/verify", &admin, None).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = client.json("GET", "/api/me", &reviewer, None).await;
    assert_eq!(status, 200);
    assert_eq!(v["user"], "reviewer-a");
    assert_eq!(v["role"], "reviewer");
    drop(api);
}

/// Mean squared difference of neighbouring pixels of a grayscale image scaled to 64×64:
/// the fine detail a blur removes.
fn detail_energy(img: &image::DynamicImage) -> f64 {
    let g = img
        .resize_exact(64, 64, image::imageops::FilterType::Triangle)
        .to_luma8();
    let mut sum = 0.0;
    for y in 0..63 {
        for x in 0..63 {
            let p = f64::from(g.get_pixel(x, y)[0]);
            let dx = p - f64::from(g.get_pixel(x + 1, y)[0]);
            let dy = p - f64::from(g.get_pixel(x, y + 1)[0]);
            sum += dx * dx + dy * dy;
        }
    }
    sum / (63.0 * 63.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn reviewers_preview_reveal_confirm_and_release_on_the_real_stack() {
    let stack = Stack::start();
    let sdk = stack.sdk().await;
    let s3 = hashgate_aws::s3_client(&sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let (a, b) = (image(900, 600, 1), image(640, 480, 2));
    import(&stack, &[&a, &b]);
    let worker = stack.worker(&[]);
    let bucket = stack.var("HASHGATE_UPLOAD_BUCKET").to_string();
    let cases = stack.var("HASHGATE_CASE_TABLE").to_string();
    let mut ids = HashMap::new();
    for (name, content) in [("a", &a), ("b", &b)] {
        let key = format!("photos/{name}.png");
        let put = s3
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .content_type("image/png")
            .body(ByteStream::from(content.clone()))
            .send()
            .await
            .unwrap();
        let object = ObjectRef {
            bucket: bucket.clone(),
            key: key.clone(),
            version_id: put.version_id().map(str::to_string),
            etag: put.e_tag().map(|e| e.trim_matches('"').to_string()),
        };
        let id = object.case_id();
        eventually("the case", WAIT, || {
            let (dynamo, cases, id) = (dynamo.clone(), cases.clone(), id.clone());
            async move { case_ids(&dynamo, &cases).await.contains(&id).then_some(()) }
        })
        .await;
        ids.insert(name, (id, key));
    }
    let api = stack.review_api(&[]);
    let client = Client {
        http: reqwest::Client::new(),
        base: api.url.clone(),
    };
    let ra = stack.sign_in("reviewer-a").await;
    let rb = stack.sign_in("reviewer-b").await;
    let admin = stack.sign_in("admin-a").await;
    let (id_a, _) = ids["a"].clone();
    let (id_b, key_b) = ids["b"].clone();

    // The queue, oldest first, with provenance.
    let (status, v) = client.json("GET", "/api/cases", &ra, None).await;
    assert_eq!(status, 200, "{v}");
    let listed: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["case_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [id_a.as_str(), id_b.as_str()]);
    assert_eq!(v["items"][0]["matches"][0]["list"], "e2e-review");
    assert_eq!(v["items"][0]["matches"][0]["category"], "A1");
    let (_, v) = client
        .json("GET", "/api/cases?status=confirmed", &ra, None)
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 0);

    // The case, with its content type and history.
    let (status, v) = client
        .json("GET", &format!("/api/cases/{id_a}"), &ra, None)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["case"]["content_type"], "image/png");
    assert_eq!(v["case"]["object"]["key"], "photos/a.png");
    let actions: Vec<&str> = v["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["quarantined", "viewed"]);

    // The preview: small, gray, blurred, never the original.
    let (status, headers, body) = client
        .send(
            "GET",
            &format!("/api/cases/{id_a}/preview"),
            Some(&ra),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["cache-control"], "no-store");
    assert_ne!(body, a);
    let preview = image::load_from_memory(&body).unwrap();
    assert!(preview.width() <= 256 && preview.height() <= 256);
    assert_eq!(preview.color(), image::ColorType::L8);
    let original = image::load_from_memory(&a).unwrap();
    let (e_preview, e_original) = (detail_energy(&preview), detail_energy(&original));
    assert!(
        e_preview < e_original / 10.0,
        "detail energy {e_preview} is not far below the original's {e_original}"
    );

    // A reveal, with a reason; counted on the reviewer's page.
    let (status, headers, body) = client
        .send(
            "POST",
            &format!("/api/cases/{id_a}/reveal"),
            Some(&ra),
            Some(json!({"reason": "blur hides whether it matches"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-reveal-seconds"], "10");
    let revealed = image::load_from_memory(&body).unwrap();
    assert!(detail_energy(&revealed) > e_preview);
    let (_, me) = client.json("GET", "/api/me", &ra, None).await;
    assert_eq!(me["reveals_today"][0]["case_id"], id_a.as_str());

    // The two-person rule.
    let confirm =
        json!({"decision": "confirm", "reason": "matches the list", "classification": "A1"});
    let decide = format!("/api/cases/{id_a}/decision");
    let (status, v) = client
        .json("POST", &decide, &ra, Some(confirm.clone()))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["case"]["status"], "awaiting_second_review");
    let (status, v) = client
        .json("POST", &decide, &ra, Some(confirm.clone()))
        .await;
    assert_eq!(status, 409, "{v}");
    let (status, v) = client
        .json("POST", &decide, &rb, Some(confirm.clone()))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["case"]["status"], "confirmed");
    // What the confirmation leaves is done before the answer: the report package is in the
    // reports bucket, saying the file was viewed (reviewer-a revealed it above).
    assert_eq!(v["case"]["followups"], json!([]), "{v}");
    let reports = stack.var("HASHGATE_REPORTS_BUCKET").to_string();
    let package: serde_json::Value = serde_json::from_slice(
        &get(&s3, &reports, &format!("reports/{id_a}/package.json"))
            .await
            .expect("the package"),
    )
    .unwrap();
    assert_eq!(package["manifest"]["file_viewed_by_esp"], true, "{package}");
    assert_eq!(package["manifest"]["classification"], "A1");
    let report_xml = String::from_utf8(
        get(&s3, &reports, &format!("reports/{id_a}/report.xml"))
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(
        report_xml.contains("<email>reports@hashgate.test</email>"),
        "{report_xml}"
    );
    let (status, _) = client.json("POST", &decide, &rb, Some(confirm)).await;
    assert_eq!(status, 409, "closed");

    // The owner reused b's key meanwhile; the false positive goes back under the prefix,
    // byte for byte, and the owner's new file is untouched.
    let newer = b"the owner's newer file".to_vec();
    s3.put_object()
        .bucket(&bucket)
        .key(&key_b)
        .body(ByteStream::from(newer.clone()))
        .send()
        .await
        .unwrap();
    let (status, v) = client
        .json(
            "POST",
            &format!("/api/cases/{id_b}/decision"),
            &ra,
            Some(json!({"decision": "false_positive", "reason": "an ordinary photo"})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["case"]["status"], "released");
    let restored_key = v["case"]["restored_to"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(restored_key, format!("hashgate-restored/{id_b}/{key_b}"));
    assert_eq!(get(&s3, &bucket, &restored_key).await.unwrap(), b);
    assert_eq!(get(&s3, &bucket, &key_b).await.unwrap(), newer);
    let audit_b: Vec<String> = v["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        audit_b,
        [
            "quarantined",
            "decided",
            "restored",
            "false_positive_recorded"
        ]
    );

    // The restored copy is scanned like any upload and left alone: its case is released.
    // Wait for the scanner's verdict on it (the result tag), then look.
    let verdict = eventually("the scan of the restored copy", WAIT, || {
        let (s3, bucket, key) = (s3.clone(), bucket.clone(), restored_key.clone());
        async move {
            tags(&s3, &bucket, &key, None)
                .await
                .get("hashgate-scan")
                .cloned()
        }
    })
    .await;
    assert_eq!(verdict, "released", "{}", worker.log());
    let known = case_ids(&dynamo, &cases).await;
    assert_eq!(
        known.len(),
        2,
        "no new case for the restored copy: {known:?}\n{}",
        worker.log()
    );
    assert_eq!(get(&s3, &bucket, &restored_key).await.unwrap(), b);

    // a's digests joined the own list: withdrawn from the list it first matched, a
    // re-upload of a is still matched, by the own list, without waiting for anyone.
    let dir = tempfile::tempdir().unwrap();
    let withdrawal = dir.path().join("withdraw.csv");
    std::fs::write(&withdrawal, format!("md5\n{}\n", md5_hex(&a))).unwrap();
    let out = stack
        .command(bin("hashgate"))
        // Half of this small list: over the share a withdrawal may take unforced.
        .args([
            "lists",
            "import",
            "--remove",
            "--force",
            "--list",
            "e2e-review",
        ])
        .arg(&withdrawal)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = put(&s3, &bucket, "photos/a-again.png", &a).await;
    let again_id = again.case_id();
    eventually("the re-upload's case", WAIT, || {
        let (dynamo, cases, id) = (dynamo.clone(), cases.clone(), again_id.clone());
        async move { case_ids(&dynamo, &cases).await.contains(&id).then_some(()) }
    })
    .await;
    let (_, v) = client
        .json("GET", &format!("/api/cases/{again_id}"), &admin, None)
        .await;
    let lists: Vec<(&str, &str)> = v["case"]["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["list"].as_str().unwrap(), m["id"].as_str().unwrap()))
        .collect();
    assert!(!lists.is_empty(), "{v}");
    assert!(
        lists
            .iter()
            .all(|(l, id)| *l == "own-confirmed" && *id == id_a),
        "matched by the own list only: {lists:?}"
    );

    // Every action on a left exactly one entry.
    let (_, v) = client
        .json("GET", &format!("/api/cases/{id_a}"), &admin, None)
        .await;
    let actions: Vec<&str> = v["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "quarantined",
            "viewed",
            "preview_served",
            "revealed",
            "decided",
            "decided",
            "packaged",
            "shared",
            "viewed"
        ]
    );
    let (_, v) = client.json("GET", "/api/audit/verify", &admin, None).await;
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["checkpoints"].as_u64().unwrap() >= 1, "{v}");
    drop(api);
    drop(worker);

    tamper_and_verify(&stack, &dynamo).await;
}

/// `hashgate audit verify` passes on the untouched chain and names the entry after a
/// flipped byte, a deleted entry and a reordered pair.
async fn tamper_and_verify(stack: &Stack, dynamo: &aws_sdk_dynamodb::Client) {
    let table = stack.var("HASHGATE_AUDIT_TABLE").to_string();
    let (code, out) = audit_verify(stack);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("audit chain verified"), "{out}");
    let item = |seq: u64| {
        let (dynamo, table) = (dynamo.clone(), table.clone());
        async move {
            dynamo
                .get_item()
                .table_name(&table)
                .key("chain", AttributeValue::S("audit".into()))
                .key("seq", AttributeValue::N(seq.to_string()))
                .send()
                .await
                .unwrap()
                .item()
                .cloned()
                .expect("the entry")
        }
    };
    let put = |item: HashMap<String, AttributeValue>| {
        let (dynamo, table) = (dynamo.clone(), table.clone());
        async move {
            dynamo
                .put_item()
                .table_name(&table)
                .set_item(Some(item))
                .send()
                .await
                .unwrap();
        }
    };
    // A flipped byte.
    let original = item(4).await;
    let mut flipped = original.clone();
    let detail = flipped["detail"].as_s().unwrap().clone();
    let mut bytes = detail.into_bytes();
    bytes[0] ^= 0x01;
    flipped.insert(
        "detail".into(),
        AttributeValue::S(String::from_utf8(bytes).unwrap()),
    );
    put(flipped).await;
    let (code, out) = audit_verify(stack);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("BROKEN at entry 4"), "{out}");
    put(original.clone()).await;
    assert_eq!(audit_verify(stack).0, 0);
    // A deleted entry.
    dynamo
        .delete_item()
        .table_name(&table)
        .key("chain", AttributeValue::S("audit".into()))
        .key("seq", AttributeValue::N("4".into()))
        .send()
        .await
        .unwrap();
    let (code, out) = audit_verify(stack);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("BROKEN at entry 5") && out.contains("entry 4 is missing"),
        "{out}"
    );
    put(original).await;
    assert_eq!(audit_verify(stack).0, 0);
    // A reordered pair: entries 5 and 6 swap places.
    let (five, six) = (item(5).await, item(6).await);
    let moved = |mut from: HashMap<String, AttributeValue>, seq: u64| {
        from.insert("seq".into(), AttributeValue::N(seq.to_string()));
        from
    };
    put(moved(six.clone(), 5)).await;
    put(moved(five.clone(), 6)).await;
    let (code, out) = audit_verify(stack);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("BROKEN at entry 5"), "{out}");
    put(five).await;
    put(six).await;
    let (code, out) = audit_verify(stack);
    assert_eq!(code, 0, "{out}");
}
