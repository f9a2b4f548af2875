//! The deployment contract: `infra/template.yaml` against what the functions' code needs.
//!
//! - every environment variable a function reads and needs in Lambda is set on it in the
//!   template, and the template sets no variable the function does not read;
//! - every AWS action the function's code calls (and Lambda calls for it) is granted in its
//!   role on the right resource, and the role grants no action nobody needs, on no `*`;
//! - every SDK call in the adapters' and functions' source is declared in
//!   `hashgate_aws::access` (or the function's own list), so the declarations cannot drift
//!   from the code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hashgate_aws::access::{self, Need};
use hashgate_scanner::deployment::{self, Binding, Deployed};
use serde_json::{json, Value};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The template as JSON, short-form tags (`!Ref X`) turned into their long forms.
fn template() -> Value {
    let path = repo().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    to_json(yaml)
}

fn to_json(v: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => json!(b),
        Y::Number(n) => serde_json::to_value(n).unwrap(),
        Y::String(s) => json!(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(m) => Value::Object(
            m.into_iter()
                .filter_map(|(k, v)| k.as_str().map(|k| (k.to_string(), to_json(v))))
                .collect(),
        ),
        Y::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            let value = to_json(t.value);
            match name {
                "Ref" => json!({ "Ref": value }),
                "Condition" => json!({ "Condition": value }),
                "GetAtt" => match value {
                    Value::String(s) => {
                        let (a, b) = s.split_once('.').expect("!GetAtt Resource.Attribute");
                        json!({ "Fn::GetAtt": [a, b] })
                    }
                    other => json!({ "Fn::GetAtt": other }),
                },
                other => json!({ format!("Fn::{other}"): value }),
            }
        }
    }
}

/// Logical ids and parameters an expression refers to (pseudo parameters left out).
fn refs(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    collect_refs(v, &mut out);
    out
}

fn collect_refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| collect_refs(i, out)),
        Value::Object(m) => {
            if let Some(Value::String(name)) = m.get("Ref") {
                if !name.starts_with("AWS::") {
                    out.insert(name.clone());
                }
            } else if let Some(Value::Array(a)) = m.get("Fn::GetAtt") {
                out.insert(a[0].as_str().unwrap().to_string());
            } else if let Some(sub) = m.get("Fn::Sub") {
                let (text, vars) = match sub {
                    Value::String(s) => (s.as_str(), None),
                    Value::Array(a) => (a[0].as_str().unwrap(), a[1].as_object()),
                    other => panic!("Fn::Sub {other}"),
                };
                for name in sub_names(text) {
                    match vars.and_then(|vars| vars.get(&name)) {
                        Some(value) => collect_refs(value, out),
                        None if !name.starts_with("AWS::") => {
                            out.insert(name);
                        }
                        None => {}
                    }
                }
            } else {
                m.values().for_each(|i| collect_refs(i, out));
            }
        }
        _ => {}
    }
}

/// The `${Name}` / `${Name.Attribute}` names of a Sub string.
fn sub_names(text: &str) -> Vec<String> {
    text.split("${")
        .skip(1)
        .filter_map(|part| part.split_once('}'))
        .map(|(name, _)| name.split('.').next().unwrap().to_string())
        .filter(|name| !name.starts_with('!'))
        .collect()
}

/// Both branches of every `Fn::If` kept (minus `AWS::NoValue`): what a statement may be.
fn branches(v: &Value) -> Vec<Value> {
    match v.get("Fn::If") {
        Some(Value::Array(a)) => [&a[1], &a[2]]
            .into_iter()
            .filter(|b| b.get("Ref") != Some(&json!("AWS::NoValue")))
            .flat_map(branches)
            .collect(),
        _ => vec![v.clone()],
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        _ => vec![],
    }
}

/// One resource of a statement: what it refers to, and the object key pattern if it names
/// objects (`<bucket>/<pattern>`).
#[derive(Debug)]
struct Granted {
    refs: BTreeSet<String>,
    key_pattern: Option<String>,
    literal: String,
}

fn granted_resources(v: &Value) -> Vec<Granted> {
    match v {
        Value::Array(items) => items.iter().flat_map(granted_resources).collect(),
        Value::Object(m) if m.contains_key("Fn::Split") => {
            granted_resources(&m["Fn::Split"].as_array().unwrap()[1])
        }
        Value::Object(m) if m.contains_key("Fn::Sub") => {
            let text = match &m["Fn::Sub"] {
                Value::String(s) => s.clone(),
                Value::Array(a) => a[0].as_str().unwrap().to_string(),
                _ => unreachable!(),
            };
            // The key pattern is whatever follows the last reference.
            let tail = text.rsplit('}').next().unwrap_or_default();
            vec![Granted {
                refs: refs(v),
                key_pattern: tail.strip_prefix('/').map(str::to_string),
                literal: text,
            }]
        }
        Value::String(s) => vec![Granted {
            refs: BTreeSet::new(),
            key_pattern: None,
            literal: s.clone(),
        }],
        other => vec![Granted {
            refs: refs(other),
            key_pattern: None,
            literal: other.to_string(),
        }],
    }
}

/// `*`-glob match of an S3 key pattern.
fn glob(pattern: &str, key: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == key,
        Some((head, rest)) => {
            key.starts_with(head)
                && (0..=key.len() - head.len()).any(|i| glob(rest, &key[head.len() + i..]))
        }
    }
}

fn action_matches(granted: &str, needed: &str) -> bool {
    glob(&granted.to_ascii_lowercase(), &needed.to_ascii_lowercase())
}

struct Function<'t> {
    logical: &'static str,
    template: &'t Value,
    props: &'t Value,
    statements: Vec<Value>,
}

impl<'t> Function<'t> {
    fn new(template: &'t Value, logical: &'static str) -> Function<'t> {
        let spec = &template["Resources"][logical];
        assert_eq!(
            spec["Type"], "AWS::Serverless::Function",
            "{logical} is not a function in infra/template.yaml"
        );
        let props = &spec["Properties"];
        let role_refs = refs(&props["Role"]);
        assert_eq!(
            role_refs.len(),
            1,
            "{logical}: Role is one role of the template"
        );
        let role_name = role_refs.into_iter().next().unwrap();
        let role = &template["Resources"][&role_name];
        assert_eq!(role["Type"], "AWS::IAM::Role", "{logical}: {role_name}");
        let statements = role["Properties"]["Policies"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap().clone())
            .flat_map(|s| branches(&s))
            .collect();
        Function {
            logical,
            template,
            props,
            statements,
        }
    }

    fn environment(&self) -> &serde_json::Map<String, Value> {
        self.props["Environment"]["Variables"]
            .as_object()
            .unwrap_or_else(|| panic!("{}: no Environment.Variables", self.logical))
    }

    /// The logical resource a variable names (`!Ref X`).
    fn variable_resource(&self, name: &str) -> String {
        let value = self
            .environment()
            .get(name)
            .unwrap_or_else(|| panic!("{}: {name} is not set", self.logical));
        let r = refs(value);
        assert_eq!(
            r.len(),
            1,
            "{}: {name} should name one resource",
            self.logical
        );
        r.into_iter().next().unwrap()
    }

    fn variable_literal(&self, name: &str) -> String {
        self.environment()[name]
            .as_str()
            .unwrap_or_else(|| panic!("{}: {name} should be a literal", self.logical))
            .to_string()
    }

    /// The resources (logical ids or parameters) a binding stands for; each must be granted.
    fn targets(&self, binding: Binding) -> Vec<String> {
        let resources = self.template["Resources"].as_object().unwrap();
        match binding {
            Binding::Variable(v) | Binding::Object { bucket: v, .. } => {
                vec![self.variable_resource(v)]
            }
            Binding::ScannedBuckets => {
                // The stack's bucket that sends upload events, and the existing ones.
                let mut out: Vec<String> = resources
                    .iter()
                    .filter(|(_, r)| {
                        r["Type"] == "AWS::S3::Bucket"
                            && !r["Properties"]["NotificationConfiguration"].is_null()
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                assert_eq!(out.len(), 1, "one upload bucket with notifications");
                out.push("ExistingBucketArns".into());
                out
            }
            Binding::EventSourceQueue => {
                let events = self.props["Events"].as_object().unwrap();
                let sqs: Vec<_> = events.values().filter(|e| e["Type"] == "SQS").collect();
                assert_eq!(sqs.len(), 1, "{}: one SQS event source", self.logical);
                refs(&sqs[0]["Properties"]["Queue"]).into_iter().collect()
            }
            Binding::LogGroup => refs(&self.props["LoggingConfig"]["LogGroup"])
                .into_iter()
                .collect(),
            Binding::KeyOfBucket(v) => {
                let bucket = self.variable_resource(v);
                let sse = &resources[&bucket]["Properties"]["BucketEncryption"]
                    ["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"];
                refs(&sse["KMSMasterKeyID"]).into_iter().collect()
            }
            Binding::EventBus(v) => vec![format!("event-bus/{}", self.variable_literal(v))],
        }
    }

    /// Whether some statement allows `action` on `target`, as objects (matching `key`, or
    /// any key) or as the resource itself.
    fn grants(&self, action: &str, target: &str, objects: bool, key: Option<&str>) -> bool {
        self.statements.iter().any(|s| {
            s["Effect"] == "Allow"
                && strings(&s["Action"])
                    .iter()
                    .any(|a| action_matches(a, action))
                && granted_resources(&s["Resource"]).iter().any(|g| {
                    let names_target = g.refs.contains(target)
                        || (target.starts_with("event-bus/") && g.literal.ends_with(target));
                    names_target
                        && match (&g.key_pattern, objects) {
                            (Some(p), true) => key.map_or(p == "*", |k| glob(p, k)),
                            (None, false) => true,
                            _ => false,
                        }
                })
        })
    }
}

fn all_needs() -> Vec<Need> {
    deployment::NEEDS
        .iter()
        .flat_map(|n| n.iter().copied())
        .collect()
}

#[test]
fn scanner_variables_are_set_in_the_template_and_nothing_else_is() {
    let template = template();
    let f = Function::new(&template, "ScannerFunction");
    let env = f.environment();
    for v in deployment::VARIABLES {
        match v.deployed {
            Deployed::Set => assert!(
                env.contains_key(v.name),
                "ScannerFunction: the scanner reads {} but the template does not set it",
                v.name
            ),
            Deployed::NotInLambda(why) => assert!(
                !env.contains_key(v.name),
                "ScannerFunction sets {}, which Lambda must not: {why}",
                v.name
            ),
        }
    }
    let known: BTreeSet<&str> = deployment::VARIABLES.iter().map(|v| v.name).collect();
    for name in env.keys() {
        assert!(
            known.contains(name.as_str()),
            "ScannerFunction sets {name}, which the scanner does not read (a typo?)"
        );
    }
}

#[test]
fn every_variable_the_scanner_source_reads_is_declared() {
    let known: BTreeSet<&str> = deployment::VARIABLES.iter().map(|v| v.name).collect();
    let dir = repo().join("functions/scanner/src");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for part in text.split("\"HASHGATE_").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            let name = format!("HASHGATE_{name}");
            assert!(
                known.contains(name.as_str()),
                "{}: reads {name}, which deployment::VARIABLES does not declare",
                path.display()
            );
            seen += 1;
        }
    }
    assert!(
        seen > 10,
        "found only {seen} variable names in {}",
        dir.display()
    );
}

#[test]
fn scanner_role_grants_every_needed_action_on_the_right_resource() {
    let template = template();
    let f = Function::new(&template, "ScannerFunction");
    let mut missing = vec![];
    for need in all_needs() {
        let binding = deployment::binding(need.on);
        let objects = need.on.is_objects();
        let key = match binding {
            Binding::Object { key, .. } => Some(f.variable_literal(key)),
            _ => None,
        };
        for target in f.targets(binding) {
            for action in need.actions {
                if !f.grants(action, &target, objects, key.as_deref()) {
                    missing.push(format!(
                        "{action} on {target}{} (for {:?}, {:?})",
                        if objects { "/*" } else { "" },
                        need.on,
                        need.operations
                    ));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "ScannerRole lacks:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn scanner_role_grants_nothing_unneeded_and_no_wildcard_resource() {
    let template = template();
    let f = Function::new(&template, "ScannerFunction");
    let needed: BTreeSet<&str> = all_needs()
        .iter()
        .flat_map(|n| n.actions.iter().copied())
        .collect();
    for s in &f.statements {
        let sid = s["Sid"].as_str().unwrap_or("?");
        for action in strings(&s["Action"]) {
            assert!(
                !action.contains('*'),
                "ScannerRole {sid}: wildcard action {action}"
            );
            assert!(
                needed.contains(action.as_str()),
                "ScannerRole {sid}: grants {action}, which no code of the scanner needs"
            );
        }
        for g in granted_resources(&s["Resource"]) {
            assert!(
                g.literal != "*" && !g.refs.is_empty() || g.literal.contains("event-bus/"),
                "ScannerRole {sid}: resource {} names none of the stack's resources",
                g.literal
            );
        }
    }
}

#[test]
fn the_checker_notices_a_missing_grant() {
    // Without one statement, the check above must fail: it is not vacuous.
    let mut template = template();
    let statements = template["Resources"]["ScannerRole"]["Properties"]["Policies"][0]
        ["PolicyDocument"]["Statement"]
        .as_array_mut()
        .unwrap();
    statements.retain(|s| s["Sid"] != "WriteQuarantinedCopies");
    let f = Function::new(&template, "ScannerFunction");
    assert!(!f.grants("s3:PutObjectRetention", "QuarantineBucket", true, None));
    assert!(f.grants("s3:GetObject", "UploadBucket", true, None));
    assert!(!f.grants("s3:GetObject", "UploadBucket", false, None));
    assert!(f.grants(
        "s3:GetObject",
        "FilterBucket",
        true,
        Some("filters/current.hgf")
    ));
    assert!(!f.grants("s3:GetObject", "FilterBucket", true, Some("lists/x.csv")));
}

/// The SDK operations called in a source file: `client.op()`, `sqs.op()`, `events.op()`.
fn sdk_calls(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for receiver in ["client", "sqs", "events"] {
        for (at, _) in text.match_indices(receiver) {
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let rest = text[at + receiver.len()..].trim_start();
            let Some(rest) = rest.strip_prefix('.') else {
                continue;
            };
            let rest = rest.trim_start();
            let ident: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !ident.is_empty() && rest[ident.len()..].starts_with("()") {
                out.insert(
                    ident
                        .split('_')
                        .map(|w| w[..1].to_ascii_uppercase() + &w[1..])
                        .collect(),
                );
            }
        }
    }
    out
}

#[test]
fn every_sdk_call_in_the_source_is_declared_and_every_declaration_is_called() {
    let declared: BTreeMap<&str, Vec<&[Need]>> = BTreeMap::from([
        ("adapters/aws/src/s3.rs", vec![access::S3_OBJECTS]),
        (
            "adapters/aws/src/filter_source.rs",
            vec![access::FILTER_READ, access::FILTER_PUBLISH],
        ),
        (
            "adapters/aws/src/dynamo.rs",
            vec![access::HASHES_READ, access::HASHES_WRITE, access::CASES],
        ),
        ("adapters/aws/src/notify.rs", vec![access::NOTIFY]),
        (
            "adapters/aws/src/notifications.rs",
            vec![access::BUCKET_NOTIFICATIONS],
        ),
        ("functions/scanner/src/worker.rs", vec![deployment::WORKER]),
    ]);
    let mut files = vec![];
    for dir in ["adapters/aws/src", "functions/scanner/src"] {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
            files.push(format!(
                "{dir}/{}",
                entry.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    for file in files {
        let calls = sdk_calls(&std::fs::read_to_string(repo().join(&file)).unwrap());
        let ops: BTreeSet<String> = declared
            .get(file.as_str())
            .into_iter()
            .flatten()
            .flat_map(|needs| needs.iter().flat_map(|n| n.operations.iter()))
            .map(|s| s.to_string())
            .collect();
        let undeclared: Vec<_> = calls.difference(&ops).collect();
        assert!(
            undeclared.is_empty(),
            "{file}: calls {undeclared:?}, not declared in hashgate_aws::access"
        );
        let uncalled: Vec<_> = ops.difference(&calls).collect();
        assert!(
            uncalled.is_empty(),
            "{file}: declares {uncalled:?}, which it never calls"
        );
    }
    // The scanner's needs name the operations of the adapters it uses; it uses the read side
    // of the hash store only.
    let scanner_ops: BTreeSet<&str> = all_needs()
        .iter()
        .flat_map(|n| n.operations.iter().copied())
        .collect();
    assert!(!scanner_ops.contains("BatchWriteItem"));
    assert!(scanner_ops.contains("TransactWriteItems"));
}

/// A request, as a bucket policy's conditions see it.
struct Request<'a> {
    action: &'a str,
    /// The caller's role: a logical id of the template (or another name for anyone else).
    principal: &'a str,
    /// `s3:ExistingObjectTag/<key>` values.
    existing_tags: &'a [(&'a str, &'a str)],
    /// `s3:RequestObjectTagKeys`.
    request_tag_keys: &'a [&'a str],
    secure_transport: bool,
}

impl Request<'_> {
    fn context(&self, key: &str) -> Vec<String> {
        match key {
            "aws:PrincipalArn" => vec![self.principal.to_string()],
            "aws:SecureTransport" => vec![self.secure_transport.to_string()],
            "s3:RequestObjectTagKeys" => self
                .request_tag_keys
                .iter()
                .map(|k| k.to_string())
                .collect(),
            other => match other.strip_prefix("s3:ExistingObjectTag/") {
                Some(tag) => self
                    .existing_tags
                    .iter()
                    .filter(|(k, _)| *k == tag)
                    .map(|(_, v)| v.to_string())
                    .collect(),
                None => panic!("condition key {other} is not modelled by this test"),
            },
        }
    }
}

/// Condition values: literals, or the logical id a `!GetAtt X.Arn` names.
fn condition_values(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().flat_map(condition_values).collect(),
        Value::String(s) => vec![s.clone()],
        Value::Bool(b) => vec![b.to_string()],
        other => refs(other).into_iter().collect(),
    }
}

/// Whether every condition of `statement` holds for `request` (IAM semantics for the
/// operators the template uses; a missing key makes a positive operator false and a
/// negated one true).
fn conditions_hold(statement: &Value, request: &Request) -> bool {
    let Some(conditions) = statement.get("Condition").and_then(Value::as_object) else {
        return true;
    };
    conditions.iter().all(|(operator, tests)| {
        tests.as_object().unwrap().iter().all(|(key, values)| {
            let wanted = condition_values(values);
            let actual = request.context(key);
            let any_equal = actual.iter().any(|a| wanted.contains(a));
            match operator.as_str() {
                "StringEquals" | "ArnEquals" | "Bool" | "ForAnyValue:StringEquals" => any_equal,
                "StringNotEquals" | "ArnNotEquals" => !any_equal,
                other => panic!("condition operator {other} is not modelled by this test"),
            }
        })
    })
}

/// Whether `policy` (a bucket policy resource) explicitly denies `request` on objects.
fn denies(template: &Value, policy: &str, request: &Request) -> bool {
    template["Resources"][policy]["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(branches)
        .filter(|s| s["Effect"] == "Deny")
        .filter(|s| {
            strings(&s["Action"])
                .iter()
                .any(|a| action_matches(a, request.action))
        })
        .any(|s| conditions_hold(&s, request))
}

fn request<'a>(action: &'a str, principal: &'a str) -> Request<'a> {
    Request {
        action,
        principal,
        existing_tags: &[],
        request_tag_keys: &[],
        secure_transport: true,
    }
}

#[test]
fn reads_are_blocked_until_the_scanner_tags_an_object_clean() {
    use hashgate_core::pipeline::{ScanStatus, RESULT_TAG};
    let template = template();
    let policy = "UploadBucketPolicy";
    let clean = [(RESULT_TAG, ScanStatus::Clean.tag_value())];
    let matched = [(RESULT_TAG, "match")];
    let owner = "AnyOtherPrincipal";

    // Unscanned, or scanned and not clean: nobody but the scanner reads it.
    for action in ["s3:GetObject", "s3:GetObjectVersion"] {
        assert!(denies(&template, policy, &request(action, owner)));
        let r = Request {
            existing_tags: &matched,
            ..request(action, owner)
        };
        assert!(denies(&template, policy, &r));
        assert!(!denies(&template, policy, &request(action, "ScannerRole")));
        let r = Request {
            existing_tags: &clean,
            ..request(action, owner)
        };
        assert!(!denies(&template, policy, &r), "{action} of a clean object");
    }
    // Only the scanner sets the result tag; an upload carrying it is refused outright.
    for action in ["s3:PutObjectTagging", "s3:PutObjectVersionTagging"] {
        let r = Request {
            request_tag_keys: &["project", RESULT_TAG],
            ..request(action, owner)
        };
        assert!(
            denies(&template, policy, &r),
            "{action} setting {RESULT_TAG}"
        );
        let r = Request {
            request_tag_keys: &[RESULT_TAG],
            ..request(action, "ScannerRole")
        };
        assert!(!denies(&template, policy, &r));
        let r = Request {
            request_tag_keys: &["project"],
            ..request(action, owner)
        };
        assert!(!denies(&template, policy, &r), "owners keep their own tags");
    }
    let r = Request {
        request_tag_keys: &[RESULT_TAG],
        ..request("s3:PutObject", owner)
    };
    assert!(
        denies(&template, policy, &r),
        "an upload tagging itself clean"
    );
    assert!(!denies(&template, policy, &request("s3:PutObject", owner)));
    // Plain HTTP is refused for everyone.
    let r = Request {
        secure_transport: false,
        ..request("s3:PutObject", "ScannerRole")
    };
    assert!(denies(&template, policy, &r));

    // The blocking statements exist only with BlockReadsUntilScanned=true, which also makes
    // the scanner tag every clean object.
    let statements = template["Resources"][policy]["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    for s in statements.iter().filter(|s| s.get("Fn::If").is_some()) {
        assert_eq!(s["Fn::If"][0], "BlockReads");
        assert_eq!(s["Fn::If"][2], json!({"Ref": "AWS::NoValue"}));
    }
    let f = Function::new(&template, "ScannerFunction");
    assert_eq!(
        f.environment()["HASHGATE_TAG_CLEAN"],
        json!({"Fn::If": ["BlockReads", "true", {"Ref": "TagCleanObjects"}]})
    );
}

#[test]
fn only_the_scanner_and_reviewers_touch_quarantined_objects() {
    let template = template();
    let policy = "QuarantineBucketPolicy";
    for action in [
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "s3:PutObjectRetention",
        "s3:PutObjectLegalHold",
        "s3:BypassGovernanceRetention",
    ] {
        assert!(
            denies(&template, policy, &request(action, "AccountAdministrator")),
            "{action} by anyone else"
        );
        for role in ["ScannerRole", "ReviewerRole"] {
            assert!(
                !denies(&template, policy, &request(action, role)),
                "{action} by {role}"
            );
        }
    }
    // The scanner is granted what it needs there by its role (checked above); the bucket
    // encrypts with the key the scanner may use.
    let f = Function::new(&template, "ScannerFunction");
    assert!(f.grants("kms:GenerateDataKey", "QuarantineKey", false, None));
}
