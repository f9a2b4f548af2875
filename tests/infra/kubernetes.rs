//! `infra/kubernetes/` held to the scanner's own configuration: each workload's environment
//! (the ConfigMap, the example Secret, the container's own variables) is parsed by the
//! scanner's configuration parser and must be accepted, with the ingress the workload is
//! for; every variable set is one the scanner declares (`deployment::VARIABLES`) or the AWS
//! SDK reads; the spool, the hash database and the listening port agree with the volumes and
//! ports. `scripts/check_kubernetes.py` (make lint-infra) checks the objects against the
//! Kubernetes API's and KEDA's schemas.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hashgate_scanner::config::{Config, Ingress};
use hashgate_scanner::deployment::VARIABLES;
use serde::Deserialize;
use serde_yaml::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/kubernetes")
}

fn documents(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(dir().join(file)).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn find(file: &str, kind: &str, name: &str) -> Value {
    documents(file)
        .into_iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{file}: no {kind}/{name}"))
}

fn strings(map: &Value) -> BTreeMap<String, String> {
    map.as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let k = k.as_str().unwrap().to_string();
            let v = v
                .as_str()
                .unwrap_or_else(|| panic!("{k}: a value that is not a string"))
                .to_string();
            (k, v)
        })
        .collect()
}

/// The scanner container of a workload and the environment it would start with.
fn environment(file: &str, kind: &str, name: &str) -> (Value, BTreeMap<String, String>) {
    let workload = find(file, kind, name);
    let container = workload["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "scanner")
        .cloned()
        .expect("a scanner container");
    let mut env = BTreeMap::new();
    for source in container["envFrom"].as_sequence().unwrap() {
        if let Some(name) = source["configMapRef"]["name"].as_str() {
            env.extend(strings(&find("config.yaml", "ConfigMap", name)["data"]));
        }
        if let Some(name) = source["secretRef"]["name"].as_str() {
            env.extend(strings(
                &find("secret.example.yaml", "Secret", name)["stringData"],
            ));
        }
    }
    for var in container["env"].as_sequence().unwrap() {
        env.insert(
            var["name"].as_str().unwrap().to_string(),
            var["value"].as_str().unwrap().to_string(),
        );
    }
    (workload, env)
}

fn parse(env: &BTreeMap<String, String>) -> Config {
    Config::from_vars(|name| env.get(name).cloned())
        .unwrap_or_else(|e| panic!("the scanner refuses this environment: {e:#}"))
}

fn assert_declared(env: &BTreeMap<String, String>, what: &str) {
    for name in env.keys() {
        assert!(
            name.starts_with("AWS_") || VARIABLES.iter().any(|v| v.name == name.as_str()),
            "{what} sets {name}, which the scanner does not read (a typo?)"
        );
    }
}

fn mount_paths(container: &Value) -> Vec<String> {
    container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap().to_string())
        .collect()
}

fn scanner_container(workload: &Value) -> Value {
    workload["spec"]["template"]["spec"]["containers"][0].clone()
}

#[test]
fn the_amqp_deployment_is_a_configuration_the_scanner_accepts() {
    let (workload, env) = environment("scanner-amqp.yaml", "Deployment", "hashgate-scanner");
    assert_declared(&env, "the AMQP Deployment");
    let config = parse(&env);
    let Some(Ingress::Amqp(amqp)) = &config.ingress else {
        panic!("not the AMQP ingress: {:?}", config.ingress)
    };
    // KEDA scales on the queue these workers consume.
    let scaled = find("scanner-amqp-keda.yaml", "ScaledObject", "hashgate-scanner");
    assert_eq!(
        scaled["spec"]["triggers"][0]["metadata"]["queueName"].as_str(),
        Some(amqp.queue.as_str())
    );
    assert_eq!(
        scaled["spec"]["scaleTargetRef"]["name"],
        workload["metadata"]["name"]
    );
    let ops = config.ops.as_ref().expect("health and metrics served");
    let container = scanner_container(&workload);
    assert_eq!(
        container["ports"][0]["containerPort"].as_u64(),
        Some(u64::from(ops.listen.port()))
    );
    assert!(
        !ops.listen.ip().is_loopback(),
        "probes reach the pod's address"
    );
    let db = env.get("HASHGATE_DB").expect("a hash database");
    assert!(mount_paths(&container).contains(db), "{db} is mounted");
}

#[test]
fn the_webhook_statefulset_is_a_configuration_the_scanner_accepts() {
    let (workload, env) = environment("scanner-webhook.yaml", "StatefulSet", "hashgate-webhook");
    assert_declared(&env, "the webhook StatefulSet");
    let config = parse(&env);
    let Some(Ingress::Http(web)) = &config.ingress else {
        panic!("not the webhook ingress: {:?}", config.ingress)
    };
    let container = scanner_container(&workload);
    let paths = mount_paths(&container);
    assert!(
        paths.contains(&web.spool_dir.display().to_string()),
        "the spool ({}) is on a mounted volume: {paths:?}",
        web.spool_dir.display()
    );
    // The spool is on the pod's own claim, which outlives the pod.
    let spool_mount = container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"].as_str() == Some(&web.spool_dir.display().to_string()))
        .unwrap()["name"]
        .clone();
    assert!(workload["spec"]["volumeClaimTemplates"]
        .as_sequence()
        .unwrap()
        .iter()
        .any(|t| t["metadata"]["name"] == spool_mount));
    assert_eq!(
        container["ports"][0]["containerPort"].as_u64(),
        Some(u64::from(web.listen.port()))
    );
    let service = find("scanner-webhook.yaml", "Service", "hashgate-webhook");
    assert_eq!(
        service["spec"]["ports"][0]["port"].as_u64(),
        Some(u64::from(web.listen.port()))
    );
}
