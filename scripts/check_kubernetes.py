#!/usr/bin/env python3
"""Validate infra/kubernetes/ offline: every object against the Kubernetes API's own schema
(PyPI kubernetes-validate, strict: an unknown field is an error), KEDA's objects against
KEDA's CRD schemas (tests/fixtures/keda/, from kedacore/keda, Apache-2.0), and the
references between them: what each workload mounts, reads and probes exists, KEDA scales
the Deployment on the queue the workers consume, and every pod runs as the namespace's
"restricted" Pod Security level requires.

Exit status 0 when everything holds, 1 with one line per problem otherwise.

    .venv-k8s/bin/python scripts/check_kubernetes.py [infra/kubernetes]
"""

import copy
import pathlib
import sys

import jsonschema
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
KUBERNETES_VERSION = "1.33.0"
KEDA_CRDS = ROOT / "tests" / "fixtures" / "keda"
# Made by the operator, not by the kustomization (secret.example.yaml, lists.yaml).
MADE_BY_HAND = {("Secret", "hashgate-scanner"), ("ConfigMap", "hashgate-list-files")}

problems = []


def problem(where, what):
    problems.append(f"{where}: {what}")


def load(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def strict(schema):
    """KEDA's CRD schema with unknown fields refused, as `kubectl apply` (field validation
    Strict) refuses them; `metadata` stays open (the API server checks it)."""
    schema = copy.deepcopy(schema)

    def close(node, path):
        if not isinstance(node, dict):
            return
        if "properties" in node and "additionalProperties" not in node and path != ("metadata",):
            node["additionalProperties"] = False
        for name, child in node.get("properties", {}).items():
            close(child, path + (name,))
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                close(node[key], path)
        for key in ("anyOf", "oneOf", "allOf"):
            for child in node.get(key, []):
                close(child, path)

    close(schema, ())
    return schema


def keda_schemas():
    schemas = {}
    for path in sorted(KEDA_CRDS.glob("*.yaml")):
        for crd in load(path):
            spec = crd["spec"]
            for version in spec["versions"]:
                api = f"{spec['group']}/{version['name']}"
                schemas[(api, spec["names"]["kind"])] = strict(
                    version["schema"]["openAPIV3Schema"]
                )
    return schemas


def pod_spec(obj):
    kind = obj["kind"]
    if kind in ("Deployment", "StatefulSet", "Job"):
        return obj["spec"]["template"]["spec"]
    return None


def main():
    directory = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "infra" / "kubernetes"
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    objects = []
    for resource in kustomization["resources"]:
        path = directory / resource
        if not path.is_file():
            problem("kustomization.yaml", f"resource {resource} does not exist")
            continue
        for obj in load(path):
            objects.append((resource, obj))
    example = directory / "secret.example.yaml"
    made = [(example.name, obj) for obj in load(example)]

    schemas = keda_schemas()
    for where, obj in objects + made:
        name = f"{where}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        key = (obj.get("apiVersion"), obj.get("kind"))
        if key in schemas:
            validator = jsonschema.Draft7Validator(schemas[key])
            for error in validator.iter_errors(obj):
                at = "/".join(str(p) for p in error.absolute_path)
                problem(name, f"{at}: {error.message}")
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            at = "/".join(str(p) for p in e.path)
            problem(name, f"{at}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError:
            problem(name, f"no schema for {key} in Kubernetes {KUBERNETES_VERSION}")

    defined = {(o["kind"], o["metadata"]["name"]): o for _, o in objects}
    secret = next(o for _, o in made if o["kind"] == "Secret")
    config = defined.get(("ConfigMap", "hashgate-scanner"))
    if config is None:
        problem("config.yaml", "no ConfigMap hashgate-scanner")
        config = {"data": {}}
    listen = config["data"].get("HASHGATE_HTTP_LISTEN", "")
    port = int(listen.rsplit(":", 1)[1]) if ":" in listen else None

    def exists(kind, name, where):
        if (kind, name) not in defined and (kind, name) not in MADE_BY_HAND:
            problem(where, f"refers to {kind}/{name}, which nothing defines")

    for (kind, name), obj in defined.items():
        spec = pod_spec(obj)
        if spec is None:
            continue
        where = f"{kind}/{name}"
        pod_security = spec.get("securityContext", {})
        if pod_security.get("runAsNonRoot") is not True:
            problem(where, "the pod does not set runAsNonRoot: true")
        if pod_security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problem(where, "the pod's seccompProfile is not RuntimeDefault")
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        claims = {t["metadata"]["name"] for t in obj["spec"].get("volumeClaimTemplates", [])}
        for volume in volumes.values():
            if "persistentVolumeClaim" in volume:
                exists("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"], where)
            if "configMap" in volume:
                exists("ConfigMap", volume["configMap"]["name"], where)
        if "serviceAccountName" in spec:
            exists("ServiceAccount", spec["serviceAccountName"], where)
        for container in spec.get("initContainers", []) + spec["containers"]:
            at = f"{where} container {container['name']}"
            security = container.get("securityContext", {})
            if security.get("allowPrivilegeEscalation") is not False:
                problem(at, "allowPrivilegeEscalation is not false")
            if security.get("capabilities", {}).get("drop") != ["ALL"]:
                problem(at, "does not drop ALL capabilities")
            if security.get("readOnlyRootFilesystem") is not True:
                problem(at, "the root filesystem is writable")
            if "memory" not in container.get("resources", {}).get("limits", {}):
                problem(at, "no memory limit")
            for mount in container.get("volumeMounts", []):
                if mount["name"] not in volumes and mount["name"] not in claims:
                    problem(at, f"mounts {mount['name']}, which the pod does not have")
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    exists("ConfigMap", source["configMapRef"]["name"], at)
                if "secretRef" in source:
                    exists("Secret", source["secretRef"]["name"], at)
            ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                http = container.get(probe, {}).get("httpGet")
                if http is None:
                    continue
                target = ports.get(http["port"], http["port"])
                if target != port:
                    problem(at, f"{probe} goes to port {target}, the worker listens on {port}")
            if container["name"] == "scanner":
                for probe in ("livenessProbe", "readinessProbe"):
                    if probe not in container:
                        problem(at, f"no {probe}")

    # KEDA scales the AMQP Deployment on the queue its workers consume.
    for (kind, name), obj in defined.items():
        if kind != "ScaledObject":
            continue
        where = f"ScaledObject/{name}"
        target = obj["spec"]["scaleTargetRef"]
        exists(target.get("kind", "Deployment"), target["name"], where)
        for trigger in obj["spec"]["triggers"]:
            if trigger["type"] != "rabbitmq":
                continue
            queue = trigger["metadata"].get("queueName")
            if queue != config["data"].get("HASHGATE_AMQP_QUEUE"):
                problem(where, f"scales on queue {queue!r}, the workers consume "
                        f"{config['data'].get('HASHGATE_AMQP_QUEUE')!r}")
            auth = trigger.get("authenticationRef", {}).get("name")
            exists("TriggerAuthentication", auth, where)
            for ref in defined.get(("TriggerAuthentication", auth), {}).get("spec", {}).get(
                "secretTargetRef", []
            ):
                if ref["name"] != secret["metadata"]["name"] or ref["key"] not in secret["stringData"]:
                    problem(where, f"reads {ref['name']}/{ref['key']}, which the Secret lacks")
        deployment = defined.get(("Deployment", target["name"]))
        if deployment is not None:
            env = {
                e["name"]: e.get("value")
                for e in deployment["spec"]["template"]["spec"]["containers"][0].get("env", [])
            }
            if env.get("HASHGATE_INGRESS") != "amqp":
                problem(where, "scales a Deployment that does not consume AMQP")

    if problems:
        print("\n".join(problems))
        return 1
    print(f"{len(objects)} objects in {directory} and {len(made)} example valid "
          f"(Kubernetes {KUBERNETES_VERSION}, KEDA CRDs, references)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
