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

use hashgate_aws::access::{self, Need, Resource};
use hashgate_hashlist_sync::deployment as hashlist_sync;
use hashgate_scanner::deployment as scanner;
use serde_json::{json, Value};

/// The review function's deployment needs, compiled here on their own (they name nothing
/// of the review crate but `hashgate_aws`).
#[path = "../../functions/review-api/src/deployment.rs"]
mod review;

/// The report sender's deployment needs, compiled here on their own likewise.
#[path = "../../functions/report-sender/src/deployment.rs"]
mod report_sender;

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

/// What part of a resource an action is needed on.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Scope {
    /// The resource itself: a bucket, table, queue, key, log group or event bus.
    Itself,
    /// Objects of a bucket whose keys match this pattern (`*`: any key).
    Objects(String),
    /// This index of a table.
    Index(String),
}

/// A resource of the template (a logical id, a parameter, or `event-bus/<name>`) and the
/// part of it an action is needed on.
#[derive(Clone, Debug)]
struct Target {
    resource: String,
    scope: Scope,
}

impl Target {
    fn named_by(&self, g: &Granted) -> bool {
        g.refs.contains(&self.resource)
            || (self.resource.starts_with("event-bus/") && g.literal.ends_with(&self.resource))
    }

    /// Whether the granted resource covers all of this target.
    fn covered_by(&self, g: &Granted) -> bool {
        self.named_by(g)
            && match (&self.scope, &g.key_pattern) {
                (Scope::Itself, None) => true,
                (Scope::Objects(keys), Some(p)) => glob(p, keys),
                (Scope::Index(index), Some(p)) => *p == format!("index/{index}"),
                _ => false,
            }
    }

    /// Whether the granted resource is no more than this target.
    fn contains(&self, g: &Granted) -> bool {
        self.named_by(g)
            && match (&self.scope, &g.key_pattern) {
                (Scope::Itself, None) => true,
                (Scope::Objects(keys), Some(p)) => glob(keys, p),
                (Scope::Index(index), Some(p)) => *p == format!("index/{index}"),
                _ => false,
            }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.scope {
            Scope::Itself => write!(f, "{}", self.resource),
            Scope::Objects(keys) => write!(f, "{}/{keys}", self.resource),
            Scope::Index(index) => write!(f, "{}/index/{index}", self.resource),
        }
    }
}

struct Function<'t> {
    logical: &'static str,
    role: String,
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
            role: role_name,
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

    fn resources(&self) -> &serde_json::Map<String, Value> {
        self.template["Resources"].as_object().unwrap()
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

    /// The stack's bucket that sends upload events (its notifications name the scanner's
    /// queue), and the existing ones.
    fn scanned_buckets(&self) -> Vec<String> {
        let scan_queue = Function::new(self.template, "ScannerFunction").event_source_queue();
        let mut out = self.buckets_notifying(&scan_queue);
        assert_eq!(out.len(), 1, "one upload bucket notifying {scan_queue}");
        out.push("ExistingBucketArns".into());
        out
    }

    /// The stack's buckets whose notifications name this queue.
    fn buckets_notifying(&self, queue: &str) -> Vec<String> {
        self.resources()
            .iter()
            .filter(|(_, r)| {
                r["Type"] == "AWS::S3::Bucket"
                    && refs(&r["Properties"]["NotificationConfiguration"]).contains(queue)
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The queue of its one SQS event source.
    fn event_source_queue(&self) -> String {
        let events = self.props["Events"].as_object().unwrap();
        let sqs: Vec<_> = events.values().filter(|e| e["Type"] == "SQS").collect();
        assert_eq!(sqs.len(), 1, "{}: one SQS event source", self.logical);
        let queues: Vec<String> = refs(&sqs[0]["Properties"]["Queue"]).into_iter().collect();
        assert_eq!(queues.len(), 1, "{}: one queue", self.logical);
        queues.into_iter().next().unwrap()
    }

    fn log_group(&self) -> Vec<String> {
        refs(&self.props["LoggingConfig"]["LogGroup"])
            .into_iter()
            .collect()
    }

    /// The queue its asynchronous invocations' failures go to, which must also be the
    /// dead-letter queue of each of its EventBridge rules.
    fn failure_destination(&self) -> Vec<String> {
        let on_failure = &self.props["EventInvokeConfig"]["DestinationConfig"]["OnFailure"];
        assert_eq!(on_failure["Type"], "SQS", "{}: OnFailure", self.logical);
        let queue: Vec<String> = refs(&on_failure["Destination"]).into_iter().collect();
        assert_eq!(queue.len(), 1, "{}: one OnFailure queue", self.logical);
        for (name, event) in self.props["Events"].as_object().unwrap() {
            if event["Type"] == "EventBridgeRule" {
                let dlq: Vec<String> = refs(&event["Properties"]["DeadLetterConfig"]["Arn"])
                    .into_iter()
                    .collect();
                assert_eq!(dlq, queue, "{}: {name}'s DeadLetterConfig", self.logical);
            }
        }
        queue
    }

    /// The KMS key a bucket of the template encrypts with.
    fn key_of_bucket(&self, bucket: &str) -> Vec<String> {
        let sse = &self.resources()[bucket]["Properties"]["BucketEncryption"]
            ["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"];
        refs(&sse["KMSMasterKeyID"]).into_iter().collect()
    }

    /// A table of the template has this global secondary index.
    fn assert_index(&self, table: &str, index: &str) {
        let indexes = &self.resources()[table]["Properties"]["GlobalSecondaryIndexes"];
        assert!(
            indexes
                .as_array()
                .is_some_and(|a| a.iter().any(|i| i["IndexName"] == index)),
            "{}: {table} has no index {index}",
            self.logical
        );
    }

    /// Whether some statement allows `action` on all of `target`.
    fn grants(&self, action: &str, target: &Target) -> bool {
        self.statements.iter().any(|s| {
            s["Effect"] == "Allow"
                && strings(&s["Action"])
                    .iter()
                    .any(|a| action_matches(a, action))
                && granted_resources(&s["Resource"])
                    .iter()
                    .any(|g| target.covered_by(g))
        })
    }
}

fn target(resource: impl Into<String>, scope: Scope) -> Target {
    Target {
        resource: resource.into(),
        scope,
    }
}

/// Objects (matching `keys`) for a need on objects, else the resource itself.
fn scope(on: Resource, keys: impl Into<String>) -> Scope {
    if on.is_objects() {
        Scope::Objects(keys.into())
    } else {
        Scope::Itself
    }
}

/// One action a function needs on one target, and which need asks for it.
struct Required {
    action: &'static str,
    target: Target,
    why: String,
}

/// A function of the template and everything its code needs, bound to the template's
/// resources.
struct Contract<'t> {
    function: Function<'t>,
    required: Vec<Required>,
}

impl<'t> Contract<'t> {
    fn new(
        function: Function<'t>,
        needs: &[&[Need]],
        targets: impl Fn(&Function, Resource) -> Vec<Target>,
    ) -> Contract<'t> {
        let mut required = vec![];
        for need in needs.iter().flat_map(|n| n.iter()) {
            for target in targets(&function, need.on) {
                for action in need.actions {
                    required.push(Required {
                        action,
                        target: target.clone(),
                        why: format!("{:?} {:?}", need.on, need.operations),
                    });
                }
            }
        }
        Contract { function, required }
    }

    /// The scanner: `hashgate_scanner::deployment`.
    fn scanner(template: &'t Value) -> Contract<'t> {
        Contract::new(
            Function::new(template, "ScannerFunction"),
            scanner::NEEDS,
            |f, on| match scanner::binding(on) {
                scanner::Binding::Variable(v) => {
                    vec![target(f.variable_resource(v), scope(on, "*"))]
                }
                scanner::Binding::ObjectsUnder { bucket, prefix } => vec![target(
                    f.variable_resource(bucket),
                    scope(on, format!("{prefix}*")),
                )],
                scanner::Binding::ScannedBuckets => f
                    .scanned_buckets()
                    .into_iter()
                    .map(|b| target(b, scope(on, "*")))
                    .collect(),
                scanner::Binding::EventSourceQueue => {
                    vec![target(f.event_source_queue(), Scope::Itself)]
                }
                scanner::Binding::LogGroup => f
                    .log_group()
                    .into_iter()
                    .map(|g| target(g, Scope::Itself))
                    .collect(),
                scanner::Binding::KeyOfBucket(v) => f
                    .key_of_bucket(&f.variable_resource(v))
                    .into_iter()
                    .map(|k| target(k, Scope::Itself))
                    .collect(),
                scanner::Binding::EventBus(v) => vec![target(
                    format!("event-bus/{}", f.variable_literal(v)),
                    Scope::Itself,
                )],
            },
        )
    }

    /// The review function: `functions/review-api/src/deployment.rs`.
    fn review(template: &'t Value) -> Contract<'t> {
        // Cases name their quarantined copies in the bucket the scanner writes to.
        let scanner = Function::new(template, "ScannerFunction");
        let quarantine = scanner.variable_resource("HASHGATE_QUARANTINE_BUCKET");
        Contract::new(
            Function::new(template, "ReviewFunction"),
            review::NEEDS,
            |f, on| match review::binding(on) {
                review::Binding::Variable(v) => {
                    vec![target(f.variable_resource(v), scope(on, "*"))]
                }
                review::Binding::Index { table, index } => {
                    let table = f.variable_resource(table);
                    f.assert_index(&table, index);
                    vec![target(table, Scope::Index(index.into()))]
                }
                review::Binding::ObjectsUnder { bucket, prefix } => vec![target(
                    f.variable_resource(bucket),
                    scope(on, format!("{prefix}*")),
                )],
                review::Binding::QuarantineBucket => vec![target(&quarantine, scope(on, "*"))],
                review::Binding::KeyOfQuarantineBucket => f
                    .key_of_bucket(&quarantine)
                    .into_iter()
                    .map(|k| target(k, Scope::Itself))
                    .collect(),
                review::Binding::ScannedBuckets => f
                    .scanned_buckets()
                    .into_iter()
                    .map(|b| target(b, scope(on, "*")))
                    .collect(),
                review::Binding::EventBus(v) => vec![target(
                    format!("event-bus/{}", f.variable_literal(v)),
                    Scope::Itself,
                )],
                review::Binding::LogGroup => f
                    .log_group()
                    .into_iter()
                    .map(|g| target(g, Scope::Itself))
                    .collect(),
            },
        )
    }

    /// The report sender: `functions/report-sender/src/deployment.rs`.
    fn report_sender(template: &'t Value) -> Contract<'t> {
        // Packages name their evidence in the bucket the scanner quarantines into.
        let scanner = Function::new(template, "ScannerFunction");
        let quarantine = scanner.variable_resource("HASHGATE_QUARANTINE_BUCKET");
        Contract::new(
            Function::new(template, "ReportSenderFunction"),
            report_sender::NEEDS,
            |f, on| match report_sender::binding(on) {
                report_sender::Binding::Variable(v) => {
                    vec![target(f.variable_resource(v), scope(on, "*"))]
                }
                report_sender::Binding::ObjectsUnder { bucket, prefix } => vec![target(
                    f.variable_resource(bucket),
                    scope(on, format!("{prefix}*")),
                )],
                report_sender::Binding::QuarantineBucket => {
                    vec![target(&quarantine, scope(on, "*"))]
                }
                report_sender::Binding::KeyOfQuarantineBucket => f
                    .key_of_bucket(&quarantine)
                    .into_iter()
                    .map(|k| target(k, Scope::Itself))
                    .collect(),
                report_sender::Binding::LogGroup => f
                    .log_group()
                    .into_iter()
                    .map(|g| target(g, Scope::Itself))
                    .collect(),
                report_sender::Binding::FailureDestination => f
                    .failure_destination()
                    .into_iter()
                    .map(|q| target(q, Scope::Itself))
                    .collect(),
            },
        )
    }

    /// hashlist-sync: `hashgate_hashlist_sync::deployment`.
    fn hashlist_sync(template: &'t Value) -> Contract<'t> {
        Contract::new(
            Function::new(template, "HashlistSyncFunction"),
            hashlist_sync::NEEDS,
            |f, on| match hashlist_sync::binding(on) {
                hashlist_sync::Binding::Variable(v) => {
                    vec![target(f.variable_resource(v), scope(on, "*"))]
                }
                hashlist_sync::Binding::ObjectsUnder { bucket, prefix } => vec![target(
                    f.variable_resource(bucket),
                    scope(on, format!("{prefix}*")),
                )],
                hashlist_sync::Binding::AllObjects(v) => {
                    vec![target(f.variable_resource(v), scope(on, "*"))]
                }
                hashlist_sync::Binding::EventSourceQueue => {
                    vec![target(f.event_source_queue(), Scope::Itself)]
                }
                hashlist_sync::Binding::EventBus(v) => vec![target(
                    format!("event-bus/{}", f.variable_literal(v)),
                    Scope::Itself,
                )],
                hashlist_sync::Binding::LogGroup => f
                    .log_group()
                    .into_iter()
                    .map(|g| target(g, Scope::Itself))
                    .collect(),
            },
        )
    }

    /// Every needed action its role does not grant on all of the target.
    fn missing(&self) -> Vec<String> {
        self.required
            .iter()
            .filter(|r| !self.function.grants(r.action, &r.target))
            .map(|r| format!("{} on {} (for {})", r.action, r.target, r.why))
            .collect()
    }

    /// Every grant of its role that no need asks for on that resource, every wildcard
    /// action, and every resource that is none of the stack's.
    fn unneeded(&self) -> Vec<String> {
        let mut out = vec![];
        for s in &self.function.statements {
            let sid = s["Sid"].as_str().unwrap_or("?");
            for action in strings(&s["Action"]) {
                if action.contains('*') {
                    out.push(format!("{sid}: wildcard action {action}"));
                    continue;
                }
                for g in granted_resources(&s["Resource"]) {
                    let needed = self
                        .required
                        .iter()
                        .any(|r| r.action.eq_ignore_ascii_case(&action) && r.target.contains(&g));
                    if !needed {
                        out.push(format!(
                            "{sid}: {action} on {}, which no code of the function needs there",
                            g.literal
                        ));
                    }
                }
            }
            for g in granted_resources(&s["Resource"]) {
                if g.literal == "*" || g.refs.is_empty() && !g.literal.contains("event-bus/") {
                    out.push(format!(
                        "{sid}: resource {} names none of the stack's resources",
                        g.literal
                    ));
                }
            }
        }
        out
    }

    fn assert_grants_exactly_what_is_needed(&self) {
        let missing = self.missing();
        assert!(
            missing.is_empty(),
            "{} lacks:\n  {}",
            self.function.role,
            missing.join("\n  ")
        );
        let unneeded = self.unneeded();
        assert!(
            unneeded.is_empty(),
            "{} grants more than {} needs:\n  {}",
            self.function.role,
            self.function.logical,
            unneeded.join("\n  ")
        );
    }
}

/// A function's variables: each name, and why Lambda must not set it (`None`: it must).
fn assert_variables_set_and_nothing_else(f: &Function, variables: &[(&str, Option<&str>)]) {
    let env = f.environment();
    let logical = f.logical;
    for (name, not_in_lambda) in variables {
        match not_in_lambda {
            None => assert!(
                env.contains_key(*name),
                "{logical}: the function reads {name} but the template does not set it"
            ),
            Some(why) => assert!(
                !env.contains_key(*name),
                "{logical} sets {name}, which Lambda must not: {why}"
            ),
        }
    }
    for name in env.keys() {
        assert!(
            variables.iter().any(|(v, _)| v == name),
            "{logical} sets {name}, which the function does not read (a typo?)"
        );
    }
}

/// Every `"HASHGATE_…"` name in a function's source is one of its declared variables.
fn assert_source_reads_only_declared(dir: &str, declared: &[&str], module: &str) {
    let dir = repo().join(dir);
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
                declared.contains(&name.as_str()),
                "{}: reads {name}, which {module}::VARIABLES does not declare",
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

fn scanner_variables() -> Vec<(&'static str, Option<&'static str>)> {
    scanner::VARIABLES
        .iter()
        .map(|v| match v.deployed {
            scanner::Deployed::Set => (v.name, None),
            scanner::Deployed::NotInLambda(why) => (v.name, Some(why)),
        })
        .collect()
}

fn review_variables() -> Vec<(&'static str, Option<&'static str>)> {
    review::VARIABLES
        .iter()
        .map(|v| match v.deployed {
            review::Deployed::Set => (v.name, None),
            review::Deployed::NotInLambda(why) => (v.name, Some(why)),
        })
        .collect()
}

fn hashlist_sync_variables() -> Vec<(&'static str, Option<&'static str>)> {
    hashlist_sync::VARIABLES
        .iter()
        .map(|v| match v.deployed {
            hashlist_sync::Deployed::Set => (v.name, None),
            hashlist_sync::Deployed::NotInLambda(why) => (v.name, Some(why)),
        })
        .collect()
}

fn report_sender_variables() -> Vec<(&'static str, Option<&'static str>)> {
    report_sender::VARIABLES
        .iter()
        .map(|v| match v.deployed {
            report_sender::Deployed::Set => (v.name, None),
            report_sender::Deployed::NotInLambda(why) => (v.name, Some(why)),
        })
        .collect()
}

#[test]
fn scanner_variables_are_set_in_the_template_and_nothing_else_is() {
    let template = template();
    let f = Function::new(&template, "ScannerFunction");
    assert_variables_set_and_nothing_else(&f, &scanner_variables());
}

#[test]
fn review_variables_are_set_in_the_template_and_nothing_else_is() {
    let template = template();
    let f = Function::new(&template, "ReviewFunction");
    assert_variables_set_and_nothing_else(&f, &review_variables());
}

#[test]
fn report_sender_variables_are_set_in_the_template_and_nothing_else_is() {
    let template = template();
    let f = Function::new(&template, "ReportSenderFunction");
    assert_variables_set_and_nothing_else(&f, &report_sender_variables());
}

#[test]
fn hashlist_sync_variables_are_set_in_the_template_and_nothing_else_is() {
    let template = template();
    let f = Function::new(&template, "HashlistSyncFunction");
    assert_variables_set_and_nothing_else(&f, &hashlist_sync_variables());
}

#[test]
fn every_variable_the_functions_source_reads_is_declared() {
    let names = |v: Vec<(&'static str, Option<&'static str>)>| -> Vec<&'static str> {
        v.into_iter().map(|(name, _)| name).collect()
    };
    assert_source_reads_only_declared(
        "functions/scanner/src",
        &names(scanner_variables()),
        "hashgate_scanner::deployment",
    );
    assert_source_reads_only_declared(
        "functions/review-api/src",
        &names(review_variables()),
        "hashgate_review_api::deployment",
    );
    assert_source_reads_only_declared(
        "functions/hashlist-sync/src",
        &names(hashlist_sync_variables()),
        "hashgate_hashlist_sync::deployment",
    );
    let dir = repo().join("functions/report-sender/src");
    let declared = names(report_sender_variables());
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
                declared.contains(&name.as_str()),
                "{}: reads {name}, which hashgate_report_sender::deployment::VARIABLES does \
                 not declare",
                path.display()
            );
            seen += 1;
        }
    }
    // The bucket, the endpoint and the log filter by name; the credentials' variables
    // through hashgate_aws::secrets.
    assert!(
        seen >= 3,
        "found only {seen} variable names in {}",
        dir.display()
    );
}

#[test]
fn scanner_role_grants_every_needed_action_on_the_right_resource() {
    let template = template();
    let contract = Contract::scanner(&template);
    let missing = contract.missing();
    assert!(
        missing.is_empty(),
        "ScannerRole lacks:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn scanner_role_grants_nothing_unneeded_and_no_wildcard_resource() {
    let template = template();
    let contract = Contract::scanner(&template);
    let unneeded = contract.unneeded();
    assert!(
        unneeded.is_empty(),
        "ScannerRole:\n  {}",
        unneeded.join("\n  ")
    );
    // The case's first audit entry is linked after the chain's head, which the scanner
    // queries on the audit table itself; no index, and nothing of the case table's.
    let f = &contract.function;
    assert!(f.grants("dynamodb:Query", &target("AuditTable", Scope::Itself)));
    assert!(!f.grants("dynamodb:Query", &target("CaseTable", Scope::Itself)));
    assert!(!f.grants(
        "dynamodb:Query",
        &target("CaseTable", Scope::Index("by_created".into()))
    ));
    assert!(!f.grants(
        "dynamodb:Query",
        &target("AuditTable", Scope::Index("by_case".into()))
    ));
}

#[test]
fn review_role_grants_exactly_what_the_review_function_needs() {
    let template = template();
    Contract::review(&template).assert_grants_exactly_what_is_needed();
}

#[test]
fn report_sender_role_grants_exactly_what_the_report_sender_needs() {
    let template = template();
    let contract = Contract::report_sender(&template);
    contract.assert_grants_exactly_what_is_needed();
    // It reads the evidence and never writes, deletes or retains anything of the
    // quarantine's; it writes under reports/ only, and reads the one secret.
    let f = &contract.function;
    let evidence = target("QuarantineBucket", Scope::Objects("*".into()));
    assert!(f.grants("s3:GetObject", &evidence));
    for action in ["s3:PutObject", "s3:DeleteObject", "s3:PutObjectRetention"] {
        assert!(!f.grants(action, &evidence), "{action}");
    }
    assert!(!f.grants(
        "kms:GenerateDataKey",
        &target("QuarantineKey", Scope::Itself)
    ));
    let reports = |keys: &str| target("ReportsBucket", Scope::Objects(keys.into()));
    assert!(f.grants("s3:PutObject", &reports("reports/case-1/send-state.json")));
    assert!(!f.grants("s3:PutObject", &reports("elsewhere")));
    assert!(!f.grants("s3:DeleteObject", &reports("reports/*")));
    assert!(f.grants(
        "secretsmanager:GetSecretValue",
        &target("CybertipSecretArn", Scope::Itself)
    ));
}

#[test]
fn the_report_sender_is_deployed_only_with_a_secret_and_gets_every_report_ready_event() {
    let template = template();
    let resources = template["Resources"].as_object().unwrap();
    // Disabled by default: without the secret the packages are only written.
    assert_eq!(template["Parameters"]["CybertipSecretArn"]["Default"], "");
    assert_eq!(
        template["Parameters"]["CybertipEndpoint"]["Default"],
        "https://exttest.cybertip.org/ispws"
    );
    assert_eq!(
        template["Conditions"]["HasCybertipSecret"],
        json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "CybertipSecretArn"}, ""]}]})
    );
    for (logical, spec) in resources {
        if refs(spec).contains("ReportSenderFunction")
            || refs(spec).contains("ReportSenderRole") && spec["Type"] != "AWS::S3::BucketPolicy"
            || logical.starts_with("ReportSender")
        {
            assert_eq!(
                spec["Condition"], "HasCybertipSecret",
                "{logical} exists only with the secret"
            );
        }
    }
    let f = Function::new(&template, "ReportSenderFunction");
    assert_eq!(
        f.props["CodeUri"],
        "../target/lambda/report-sender/bootstrap.zip"
    );
    assert_eq!(
        f.environment()["HASHGATE_CYBERTIP_ENDPOINT"],
        json!({"Ref": "CybertipEndpoint"})
    );
    let rules: Vec<&Value> = f.props["Events"]
        .as_object()
        .unwrap()
        .values()
        .filter(|e| e["Type"] == "EventBridgeRule")
        .collect();
    assert_eq!(rules.len(), 1, "one EventBridge rule");
    let rule = &rules[0]["Properties"];
    assert_eq!(
        rule["Pattern"],
        json!({
            "source": [hashgate_aws::reports::EVENT_SOURCE],
            "detail-type": [hashgate_aws::reports::EVENT_DETAIL_TYPE],
        })
    );
    // On the bus the review function announces on.
    let review = Function::new(&template, "ReviewFunction");
    assert_eq!(review.variable_literal("HASHGATE_EVENT_BUS"), "default");
    assert!(rule["EventBusName"].is_null() || rule["EventBusName"] == "default");
    assert!(!rule["RetryPolicy"].is_null() && !rule["DeadLetterConfig"].is_null());
    assert_eq!(f.failure_destination(), ["ReportSenderDeadLetterQueue"]);
    // Runs of one package never overlap.
    assert_eq!(f.props["ReservedConcurrentExecutions"], 1);
}

#[test]
fn hashlist_sync_role_grants_exactly_what_hashlist_sync_needs() {
    let template = template();
    let contract = Contract::hashlist_sync(&template);
    contract.assert_grants_exactly_what_is_needed();
    // It moves list files anywhere in the lists bucket, writes and prunes under filters/
    // only, reads the one signing secret, and touches nothing of the cases or evidence.
    let f = &contract.function;
    let lists = |keys: &str| target("ListsBucket", Scope::Objects(keys.into()));
    for action in ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"] {
        assert!(
            f.grants(action, &lists("incoming/ncmec/2026-12-01.csv")),
            "{action}"
        );
        assert!(
            f.grants(action, &lists("applied/ncmec/2026-12-01.csv")),
            "{action}"
        );
    }
    let filters = |keys: &str| target("FilterBucket", Scope::Objects(keys.into()));
    let manifest = hashgate_core::manifest::MANIFEST_KEY;
    let snapshot = format!(
        "{}000000000042-abc.hgf",
        hashgate_core::manifest::SNAPSHOT_PREFIX
    );
    for action in ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"] {
        assert!(f.grants(action, &filters(manifest)), "{action}");
        assert!(f.grants(action, &filters(&snapshot)), "{action}");
        assert!(!f.grants(action, &filters("elsewhere.hgf")), "{action}");
    }
    assert!(f.grants(
        "secretsmanager:GetSecretValue",
        &target("FilterSigningSecretArn", Scope::Itself)
    ));
    assert!(!f.grants(
        "secretsmanager:GetSecretValue",
        &target("CybertipSecretArn", Scope::Itself)
    ));
    for (action, on) in [
        ("s3:GetObject", "QuarantineBucket"),
        ("s3:GetObject", "UploadBucket"),
        ("dynamodb:PutItem", "CaseTable"),
        ("dynamodb:PutItem", "AuditTable"),
    ] {
        let scope = if on.ends_with("Bucket") {
            Scope::Objects("*".into())
        } else {
            Scope::Itself
        };
        assert!(!f.grants(action, &target(on, scope)), "{action} on {on}");
    }
    // The scanner reads the filters and writes none; nobody else holds the signing key.
    let scanner = Contract::scanner(&template);
    assert!(scanner.function.grants("s3:GetObject", &filters(manifest)));
    for action in ["s3:PutObject", "s3:DeleteObject"] {
        assert!(
            !scanner.function.grants(action, &filters(manifest)),
            "{action}"
        );
    }
    for (logical, role) in template["Resources"].as_object().unwrap() {
        if role["Type"] == "AWS::IAM::Role" && logical != "HashlistSyncRole" {
            assert!(
                !refs(&role["Properties"]).contains("FilterSigningSecretArn"),
                "{logical} names the filter signing secret"
            );
        }
    }
}

#[test]
fn hashlist_sync_is_fed_by_the_lists_bucket_one_file_at_a_time_and_on_a_schedule() {
    let template = template();
    let resources = template["Resources"].as_object().unwrap();
    let f = Function::new(&template, "HashlistSyncFunction");
    assert_eq!(
        f.props["CodeUri"],
        "../target/lambda/hashlist-sync/bootstrap.zip"
    );
    // Imports never run side by side; a whole list file fits in /tmp, twice read.
    assert_eq!(f.props["ReservedConcurrentExecutions"], 1);
    assert_eq!(f.props["Timeout"], 900);
    assert_eq!(f.props["EphemeralStorage"]["Size"], 10240);

    // The queue its SQS event source reads: one file per invocation, failures reported per
    // item, and a dead-letter queue after five receives.
    let queue = f.event_source_queue();
    let events = f.props["Events"].as_object().unwrap();
    let sqs = events.values().find(|e| e["Type"] == "SQS").unwrap();
    assert_eq!(sqs["Properties"]["BatchSize"], 1);
    assert_eq!(
        sqs["Properties"]["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    let redrive = &resources[&queue]["Properties"]["RedrivePolicy"];
    assert_eq!(redrive["maxReceiveCount"], 5);
    let dead_letters: Vec<String> = refs(&redrive["deadLetterTargetArn"]).into_iter().collect();
    assert_eq!(dead_letters, ["ListsDeadLetterQueue"]);
    assert!(
        resources[&queue]["Properties"]["VisibilityTimeout"]
            .as_i64()
            .unwrap()
            >= 6 * 900,
        "{queue}'s visibility timeout is at least six times the function's"
    );
    let schedules: Vec<&Value> = events
        .values()
        .filter(|e| e["Type"] == "Schedule")
        .collect();
    assert_eq!(schedules.len(), 1, "one schedule");
    assert_eq!(
        schedules[0]["Properties"]["Schedule"],
        json!({"Ref": "ListSyncSchedule"})
    );

    // The bucket HASHGATE_LISTS_BUCKET names announces what lands under incoming/ (and only
    // there: the function's own moves announce nothing) to that queue, which lets it in.
    let lists = f.variable_resource("HASHGATE_LISTS_BUCKET");
    assert_eq!(f.buckets_notifying(&queue), std::slice::from_ref(&lists));
    let bucket = &resources[&lists];
    let notifications = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
        .as_array()
        .unwrap();
    assert_eq!(notifications.len(), 1);
    assert_eq!(notifications[0]["Event"], "s3:ObjectCreated:*");
    assert_eq!(
        notifications[0]["Filter"]["S3Key"]["Rules"],
        json!([{"Name": "prefix", "Value": hashgate_core::lists::sync::INCOMING}])
    );
    let policies: Vec<(&String, &Value)> = resources
        .iter()
        .filter(|(_, r)| {
            r["Type"] == "AWS::SQS::QueuePolicy"
                && refs(&r["Properties"]["Queues"]).contains(&queue)
        })
        .collect();
    assert_eq!(policies.len(), 1, "one policy on {queue}");
    let (policy, spec) = policies[0];
    assert_eq!(
        bucket["DependsOn"],
        json!(policy),
        "{lists} waits for {policy}"
    );
    let statements = spec["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    assert_eq!(statements.len(), 1);
    let s = &statements[0];
    assert_eq!(s["Principal"], json!({"Service": "s3.amazonaws.com"}));
    assert_eq!(s["Action"], "sqs:SendMessage");
    let source = s["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"]
        .as_str()
        .unwrap();
    let name = bucket["Properties"]["BucketName"]["Fn::Sub"]
        .as_str()
        .unwrap();
    assert_eq!(source, format!("arn:${{AWS::Partition}}:s3:::{name}"));

    // It publishes for the scanner: the same filter bucket, the same trusted keys.
    let scanner = Function::new(&template, "ScannerFunction");
    for name in ["HASHGATE_FILTER_BUCKET", "HASHGATE_FILTER_PUBLIC_KEYS"] {
        assert_eq!(f.environment()[name], scanner.environment()[name], "{name}");
    }
    assert_eq!(
        f.environment()["HASHGATE_FILTER_PUBLIC_KEYS"],
        json!({"Ref": "FilterPublicKeys"})
    );
    // The signing key and the trusted keys are the deployer's to give: no defaults.
    for name in ["FilterSigningSecretArn", "FilterPublicKeys"] {
        assert!(
            template["Parameters"][name]["Default"].is_null(),
            "{name} has a default"
        );
    }
    assert_eq!(template["Parameters"]["SnapshotsKept"]["MinValue"], 2);
}

#[test]
fn refused_lists_and_filters_and_hashlist_sync_failures_reach_the_alarm_topic() {
    let template = template();
    let resources = template["Resources"].as_object().unwrap();
    let rule = &resources["ListRefusalRule"];
    assert_eq!(rule["Type"], "AWS::Events::Rule");
    let pattern = &rule["Properties"]["EventPattern"];
    assert_eq!(
        pattern["source"],
        json!([hashgate_aws::notify::EVENT_SOURCE])
    );
    assert_eq!(
        pattern["detail-type"],
        json!(["List Refused", "Filter Refused"])
    );
    assert!(rule["Properties"]["EventBusName"].is_null());
    let targets = rule["Properties"]["Targets"].as_array().unwrap();
    assert_eq!(targets.len(), 1);
    assert_eq!(
        refs(&targets[0]["Arn"]),
        BTreeSet::from(["AlarmTopic".to_string()])
    );
    // The topic lets this rule (and only it, of EventBridge) publish.
    let statements = resources["AlarmTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    let from_events: Vec<&Value> = statements
        .iter()
        .filter(|s| s["Principal"]["Service"] == "events.amazonaws.com")
        .collect();
    assert_eq!(from_events.len(), 1);
    assert_eq!(from_events[0]["Action"], "sns:Publish");
    assert_eq!(
        refs(&from_events[0]["Condition"]["ArnEquals"]["aws:SourceArn"]),
        BTreeSet::from(["ListRefusalRule".to_string()])
    );
    // Alarms on the dead-letter queue and the function's errors.
    let alarmed = |metric: &str, dimension: &str| {
        resources.values().any(|r| {
            r["Type"] == "AWS::CloudWatch::Alarm"
                && r["Properties"]["MetricName"] == metric
                && refs(&r["Properties"]["Dimensions"]).contains(dimension)
                && refs(&r["Properties"]["AlarmActions"]).contains("AlarmTopic")
        })
    };
    assert!(alarmed(
        "ApproximateNumberOfMessagesVisible",
        "ListsDeadLetterQueue"
    ));
    assert!(alarmed("Errors", "HashlistSyncFunction"));
}

#[test]
fn the_checker_notices_a_missing_grant_and_an_unneeded_one() {
    // Without one statement, the checks above must fail: they are not vacuous.
    let mut template = template();
    let statements = template["Resources"]["ScannerRole"]["Properties"]["Policies"][0]
        ["PolicyDocument"]["Statement"]
        .as_array_mut()
        .unwrap();
    statements.retain(|s| s["Sid"] != "WriteQuarantinedCopies");
    let contract = Contract::scanner(&template);
    let f = &contract.function;
    let any = || Scope::Objects("*".into());
    assert!(!f.grants("s3:PutObjectRetention", &target("QuarantineBucket", any())));
    assert!(contract
        .missing()
        .iter()
        .any(|m| m.starts_with("s3:PutObjectRetention on QuarantineBucket/*")));
    assert!(f.grants("s3:GetObject", &target("UploadBucket", any())));
    assert!(!f.grants("s3:GetObject", &target("UploadBucket", Scope::Itself)));
    let filter = |key: &str| target("FilterBucket", Scope::Objects(key.into()));
    assert!(f.grants(
        "s3:GetObject",
        &filter(hashgate_core::manifest::MANIFEST_KEY)
    ));
    assert!(!f.grants("s3:GetObject", &filter("lists/x.csv")));
    assert!(!f.grants("s3:GetObject", &filter("*")));

    // The review role without the queue's index, with the audit table's GetItem back, and
    // with the checkpoint bucket's every object instead of the checkpoints.
    let mut template = self::template();
    let statements = template["Resources"]["ReviewFunctionRole"]["Properties"]["Policies"][0]
        ["PolicyDocument"]["Statement"]
        .as_array_mut()
        .unwrap();
    statements.retain(|s| s["Sid"] != "ListTheQueue");
    for s in statements.iter_mut() {
        if s["Sid"] == "ReadAndAppendAudit" {
            s["Action"]
                .as_array_mut()
                .unwrap()
                .push(json!("dynamodb:GetItem"));
        }
        if s["Sid"] == "WriteAuditCheckpoints" {
            s["Resource"] = json!({"Fn::Sub": "${AuditCheckpointBucket.Arn}/*"});
        }
    }
    let contract = Contract::review(&template);
    let missing = contract.missing();
    assert!(
        missing
            .iter()
            .any(|m| m.starts_with("dynamodb:Query on CaseTable/index/by_created")),
        "{missing:?}"
    );
    let unneeded = contract.unneeded();
    assert!(
        unneeded
            .iter()
            .any(|u| u.starts_with("ReadAndAppendAudit: dynamodb:GetItem")),
        "{unneeded:?}"
    );
    assert!(
        unneeded
            .iter()
            .any(|u| u.starts_with("WriteAuditCheckpoints: s3:PutObject")),
        "{unneeded:?}"
    );
}

/// The SDK operations called in a source file: `client.op()`, `s3.op()`, `sqs.op()`,
/// `events.op()`, `kms.op()`.
fn sdk_calls(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for receiver in ["client", "s3", "sqs", "events", "kms"] {
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
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            // A client handed on (`s3.clone()`) is no request.
            if !ident.is_empty() && ident != "clone" && rest[ident.len()..].starts_with("()") {
                out.insert(
                    ident
                        .split('_')
                        .filter(|w| !w.is_empty())
                        .map(|w| w[..1].to_ascii_uppercase() + &w[1..])
                        .collect(),
                );
            }
        }
    }
    // The adapters' wrappers of an SDK call: `notify::put_event` publishes an event,
    // `secrets::secret_string` reads a secret.
    for (wrapper, operation) in [
        ("put_event(", "PutEvents"),
        ("secret_string(", "GetSecretValue"),
    ] {
        if text.contains(wrapper) && !text.contains(&format!("fn {wrapper}")) {
            out.insert(operation.to_string());
        }
    }
    out
}

#[test]
fn sdk_calls_are_read_with_their_service_names() {
    let text = "self.client\n    .list_objects_v2()\n  .send(); self.kms.sign().key_id(k); \
                my_client.get_object(); kms.verify (); self.s3.head_object(); \
                aws_sdk_s3.get_object(); crate::s3::copy_source(r); s3.clone()";
    assert_eq!(
        sdk_calls(text),
        BTreeSet::from([
            "HeadObject".to_string(),
            "ListObjectsV2".to_string(),
            "Sign".to_string()
        ])
    );
    assert_eq!(
        sdk_calls("crate::notify::put_event(&self.events, bus, t, d).await"),
        BTreeSet::from(["PutEvents".to_string()])
    );
    assert_eq!(
        sdk_calls("crate::secrets::secret_string(&client, secret).await"),
        BTreeSet::from(["GetSecretValue".to_string()])
    );
}

#[test]
fn every_sdk_call_in_the_source_is_declared_and_every_declaration_is_called() {
    let declared: BTreeMap<&str, Vec<&[Need]>> = BTreeMap::from([
        (
            "adapters/aws/src/s3.rs",
            vec![access::S3_OBJECTS, access::EVIDENCE, access::BACKFILL],
        ),
        (
            "adapters/aws/src/filter_source.rs",
            vec![access::FILTER_READ],
        ),
        (
            "adapters/aws/src/publisher.rs",
            vec![access::FILTER_PUBLISH],
        ),
        (
            "adapters/aws/src/list_sync.rs",
            vec![access::LISTS_INBOX, access::LIST_EVENTS],
        ),
        // Its DynamoDB requests go through `DynamoHashes` (dynamo.rs, HASHES_WRITE): listed
        // so that a request of its own would have to be declared.
        ("adapters/aws/src/list_import.rs", vec![]),
        (
            "adapters/aws/src/signing.rs",
            vec![access::FILTER_SIGNING_SECRET],
        ),
        (
            "adapters/aws/src/dynamo.rs",
            vec![
                access::HASHES_READ,
                access::HASHES_WRITE,
                access::CASES,
                access::REVIEW_CASES,
                access::HASHES_FEEDBACK,
                access::HASHES_FEEDBACK_LIST,
            ],
        ),
        ("adapters/aws/src/checkpoint.rs", vec![access::CHECKPOINTS]),
        ("adapters/aws/src/notify.rs", vec![access::NOTIFY]),
        (
            "adapters/aws/src/notifications.rs",
            vec![access::BUCKET_NOTIFICATIONS],
        ),
        ("adapters/aws/src/hold.rs", vec![access::LEGAL_HOLDS]),
        (
            "adapters/aws/src/reports.rs",
            vec![access::REPORT_OUTBOX, access::REPORT_SENDER],
        ),
        ("adapters/aws/src/secrets.rs", vec![access::CYBERTIP_SECRET]),
        ("functions/scanner/src/worker.rs", vec![scanner::WORKER]),
        (
            "functions/hashlist-sync/src/worker.rs",
            vec![hashlist_sync::WORKER],
        ),
    ]);
    let mut files = vec![];
    for dir in [
        "adapters/aws/src",
        "functions/scanner/src",
        "functions/review-api/src",
        "functions/report-sender/src",
        "functions/hashlist-sync/src",
    ] {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
            files.push(format!(
                "{dir}/{}",
                entry.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    for file in &files {
        let calls = sdk_calls(&std::fs::read_to_string(repo().join(file)).unwrap());
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
    for file in declared.keys() {
        assert!(files.iter().any(|f| f == file), "{file} does not exist");
    }
    let operations = |needs: &[&[Need]]| -> BTreeSet<&str> {
        needs
            .iter()
            .flat_map(|n| n.iter())
            .flat_map(|n| n.operations.iter().copied())
            .collect()
    };
    // The scanner uses the read side of the hash store only.
    let scanner_ops = operations(scanner::NEEDS);
    assert!(!scanner_ops.contains("BatchWriteItem"));
    assert!(scanner_ops.contains("TransactWriteItems"));
    assert!(scanner_ops.contains("Query"));
    // The review function scans no table and deletes nothing; it writes to the hash store
    // only the own list's small imports and the feedback on entries.
    let review_ops = operations(review::NEEDS);
    for op in ["Scan", "DeleteItem", "DeleteObject"] {
        assert!(!review_ops.contains(op), "the review function uses {op}");
    }
    for op in [
        "TransactWriteItems",
        "CopyObject",
        "Sign",
        "Verify",
        "BatchWriteItem",
        "PutEvents",
    ] {
        assert!(
            review_ops.contains(op),
            "the review function never uses {op}"
        );
    }
    // Only hashlist-sync publishes filters and reads the signing key; it opens no case.
    let sync_ops = operations(hashlist_sync::NEEDS);
    for op in [
        "GetSecretValue",
        "BatchWriteItem",
        "DeleteObject",
        "PutEvents",
    ] {
        assert!(sync_ops.contains(op), "hashlist-sync never uses {op}");
    }
    for op in ["TransactWriteItems", "Query", "SendMessage"] {
        assert!(!sync_ops.contains(op), "hashlist-sync uses {op}");
    }
    assert!(!scanner_ops.contains("GetSecretValue"));
}

/// A request, as a bucket policy's conditions see it.
struct Request<'a> {
    action: &'a str,
    /// The caller's role: a logical id of the template (or another name for anyone else).
    principal: &'a str,
    /// `s3:ExistingObjectTag/<key>` values.
    existing_tags: &'a [(&'a str, &'a str)],
    /// The tags the request sets: `s3:RequestObjectTagKeys`, `s3:RequestObjectTag/<key>`.
    request_tags: &'a [(&'a str, &'a str)],
    secure_transport: bool,
}

impl Request<'_> {
    fn context(&self, key: &str) -> Vec<String> {
        let values = |tags: &[(&str, &str)], tag: &str| -> Vec<String> {
            tags.iter()
                .filter(|(k, _)| *k == tag)
                .map(|(_, v)| v.to_string())
                .collect()
        };
        match key {
            "aws:PrincipalArn" => vec![self.principal.to_string()],
            "aws:SecureTransport" => vec![self.secure_transport.to_string()],
            "s3:RequestObjectTagKeys" => self
                .request_tags
                .iter()
                .map(|(k, _)| k.to_string())
                .collect(),
            other => {
                if let Some(tag) = other.strip_prefix("s3:ExistingObjectTag/") {
                    values(self.existing_tags, tag)
                } else if let Some(tag) = other.strip_prefix("s3:RequestObjectTag/") {
                    values(self.request_tags, tag)
                } else {
                    panic!("condition key {other} is not modelled by this test")
                }
            }
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
        request_tags: &[],
        secure_transport: true,
    }
}

#[test]
fn reads_are_blocked_until_the_scanner_tags_an_object_clean() {
    use hashgate_core::pipeline::{ScanStatus, RESULT_TAG};
    let template = template();
    let policy = "UploadBucketPolicy";
    let clean = [(RESULT_TAG, ScanStatus::Clean.tag_value())];
    let released_value = ScanStatus::Released {
        case_id: String::new(),
    }
    .tag_value();
    let released = [(RESULT_TAG, released_value)];
    let held = [(RESULT_TAG, "held")];
    let matched = [(RESULT_TAG, "match")];
    let owner = "AnyOtherPrincipal";
    let review = "ReviewFunctionRole";

    // Unscanned, or scanned and neither clean nor released: nobody but the scanner and the
    // review function reads it.
    for action in ["s3:GetObject", "s3:GetObjectVersion"] {
        assert!(denies(&template, policy, &request(action, owner)));
        for tags in [&matched, &held] {
            let r = Request {
                existing_tags: tags,
                ..request(action, owner)
            };
            assert!(denies(&template, policy, &r), "{action} of {tags:?}");
        }
        assert!(!denies(&template, policy, &request(action, "ScannerRole")));
        // The review function HEADs a restore's candidate keys, reads the restored copy
        // back, and previews an object held in place.
        assert!(!denies(&template, policy, &request(action, review)));
        let r = Request {
            existing_tags: &held,
            ..request(action, review)
        };
        assert!(!denies(&template, policy, &r));
        for tags in [&clean, &released] {
            let r = Request {
                existing_tags: tags,
                ..request(action, owner)
            };
            assert!(!denies(&template, policy, &r), "{action} of {tags:?}");
        }
    }
    // Only the scanner sets the result tag, and the review function only to released; an
    // upload carrying it is refused outright.
    for action in ["s3:PutObjectTagging", "s3:PutObjectVersionTagging"] {
        for tags in [&clean, &released] {
            let r = Request {
                request_tags: &[("project", "x"), tags[0]],
                ..request(action, owner)
            };
            assert!(denies(&template, policy, &r), "{action} setting {tags:?}");
            let r = Request {
                request_tags: tags,
                ..request(action, "ScannerRole")
            };
            assert!(!denies(&template, policy, &r));
        }
        let r = Request {
            request_tags: &[("project", "x"), released[0]],
            ..request(action, review)
        };
        assert!(!denies(&template, policy, &r), "{action}: a release");
        for tags in [&clean, &held] {
            let r = Request {
                request_tags: tags,
                ..request(action, review)
            };
            assert!(
                denies(&template, policy, &r),
                "{action} by the review function setting {tags:?}"
            );
        }
        let r = Request {
            request_tags: &[("project", "x")],
            ..request(action, owner)
        };
        assert!(!denies(&template, policy, &r), "owners keep their own tags");
    }
    for tags in [&clean, &released] {
        for principal in [owner, review] {
            let r = Request {
                request_tags: tags,
                ..request("s3:PutObject", principal)
            };
            assert!(
                denies(&template, policy, &r),
                "an upload by {principal} tagging itself {tags:?}"
            );
        }
    }
    assert!(!denies(&template, policy, &request("s3:PutObject", owner)));
    // A restore's copy carries no tag of the request's own.
    assert!(!denies(&template, policy, &request("s3:PutObject", review)));
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
    // The roles the policy names are the functions' own.
    assert_eq!(f.role, "ScannerRole");
    assert_eq!(Function::new(&template, "ReviewFunction").role, review);
}

#[test]
fn only_the_scanner_and_reviewers_touch_quarantined_objects() {
    let template = template();
    let policy = "QuarantineBucketPolicy";
    for action in [
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:GetObjectTagging",
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
        for role in [
            "ScannerRole",
            "ReviewerRole",
            "ReviewFunctionRole",
            "ReportSenderRole",
        ] {
            assert!(
                !denies(&template, policy, &request(action, role)),
                "{action} by {role}"
            );
        }
    }
    // The report sender reads the evidence it uploads, and its role lets it do nothing
    // else there.
    let sender = Contract::report_sender(&template);
    let objects = target("QuarantineBucket", Scope::Objects("*".into()));
    assert!(sender.function.grants("s3:GetObject", &objects));
    assert!(!sender.function.grants("s3:PutObject", &objects));
    // The functions are granted what they need there by their roles (checked above); the
    // bucket encrypts with the key the scanner encrypts with and the review function
    // decrypts with.
    let scanner = Contract::scanner(&template);
    let review = Contract::review(&template);
    let key = target("QuarantineKey", Scope::Itself);
    assert!(scanner.function.grants("kms:GenerateDataKey", &key));
    assert!(review.function.grants("kms:Decrypt", &key));
    assert!(!review.function.grants("kms:GenerateDataKey", &key));
}

#[test]
fn only_the_review_function_writes_checkpoints_and_nobody_deletes_one() {
    let template = template();
    let policy = "AuditCheckpointBucketPolicy";
    for principal in ["ScannerRole", "ReviewerRole", "AccountAdministrator"] {
        for action in [
            "s3:PutObject",
            "s3:PutObjectRetention",
            "s3:PutObjectLegalHold",
        ] {
            assert!(
                denies(&template, policy, &request(action, principal)),
                "{action} by {principal}"
            );
        }
    }
    assert!(!denies(
        &template,
        policy,
        &request("s3:PutObject", "ReviewFunctionRole")
    ));
    for principal in ["ReviewFunctionRole", "AccountAdministrator"] {
        for action in [
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "s3:BypassGovernanceRetention",
        ] {
            assert!(
                denies(&template, policy, &request(action, principal)),
                "{action} by {principal}"
            );
        }
        // Reading stays with the account (`hashgate audit verify`).
        assert!(!denies(
            &template,
            policy,
            &request("s3:GetObject", principal)
        ));
    }
}

/// The least number of days `v` can be: a literal, or a parameter (its `MinValue`, which
/// its `Default` must not be below).
fn least_days(template: &Value, v: &Value) -> i64 {
    let number = |v: &Value| {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
    };
    if let Some(days) = number(v) {
        return days;
    }
    let name = v["Ref"].as_str().unwrap_or_else(|| panic!("days: {v}"));
    let spec = &template["Parameters"][name];
    let min = number(&spec["MinValue"]).unwrap_or_else(|| panic!("{name} has no MinValue"));
    let default = number(&spec["Default"]).unwrap_or_else(|| panic!("{name} has no Default"));
    assert!(default >= min, "{name}: Default {default} < MinValue {min}");
    min
}

/// The least retention, in days, quarantined copies get from the bucket's Object Lock
/// default, and the shortest expiry its lifecycle rules give any version (none: `None`).
fn quarantine_retention(template: &Value) -> (i64, Option<i64>) {
    let bucket = &template["Resources"]["QuarantineBucket"]["Properties"];
    assert_eq!(bucket["ObjectLockEnabled"], json!(true));
    assert_eq!(
        bucket["ObjectLockConfiguration"]["ObjectLockEnabled"],
        "Enabled"
    );
    let retention = &bucket["ObjectLockConfiguration"]["Rule"]["DefaultRetention"];
    let days = match (&retention["Days"], &retention["Years"]) {
        (days, Value::Null) => least_days(template, days),
        (Value::Null, years) => least_days(template, years) * 365,
        _ => panic!("DefaultRetention has both Days and Years"),
    };
    let mut shortest: Option<i64> = None;
    for rule in bucket["LifecycleConfiguration"]["Rules"]
        .as_array()
        .into_iter()
        .flatten()
    {
        assert!(
            rule["ExpirationDate"].is_null(),
            "a lifecycle rule expires quarantined objects on a fixed date: {rule}"
        );
        for expiry in [
            &rule["ExpirationInDays"],
            &rule["NoncurrentVersionExpirationInDays"],
            &rule["NoncurrentVersionExpiration"]["NoncurrentDays"],
        ] {
            if !expiry.is_null() {
                let d = least_days(template, expiry);
                shortest = Some(shortest.map_or(d, |s| s.min(d)));
            }
        }
    }
    (days, shortest)
}

/// 18 U.S.C. 2258A(h), as amended in 2024: reported content is preserved at least a year.
#[test]
fn quarantined_evidence_is_kept_at_least_a_year() {
    const YEAR: i64 = 365;
    let template = template();
    let (days, expiry) = quarantine_retention(&template);
    assert!(days >= YEAR, "quarantine retention can be {days} days");
    if let Some(d) = expiry {
        assert!(
            d >= YEAR,
            "a lifecycle rule expires quarantined versions after {d} days"
        );
    }
    // Each copy's own retain-until date comes from the same parameter.
    let retention = &template["Resources"]["QuarantineBucket"]["Properties"]
        ["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]["Days"];
    let scanner = Function::new(&template, "ScannerFunction");
    assert_eq!(&scanner.environment()["HASHGATE_RETENTION_DAYS"], retention);

    // The check notices a shorter minimum, and a lifecycle rule expiring sooner.
    let mut shorter = template.clone();
    shorter["Parameters"]["RetentionDays"]["MinValue"] = json!(30);
    assert_eq!(quarantine_retention(&shorter).0, 30);
    let mut expiring = template.clone();
    expiring["Resources"]["QuarantineBucket"]["Properties"]["LifecycleConfiguration"] = json!({"Rules": [{"Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 90}}]});
    assert_eq!(quarantine_retention(&expiring).1, Some(90));
}
