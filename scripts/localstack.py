#!/usr/bin/env python3
"""A local AWS stack for hashgate on the moto emulator, built from infra/template.yaml.

    localstack.py up [--port 4566] [--review-port 8790] [--stack hashgate] [--state-dir .local]
                     [--param K=V]...   (ReporterEmail defaults to reports@hashgate.test here)
    localstack.py down [--state-dir .local]
    localstack.py status [--stack hashgate] [--state-dir .local]

`up` starts `moto_server` on 127.0.0.1:PORT in the background (`--port 0` picks a free
port) and makes sure it holds the local filter signing key: the Secrets Manager secret
hashgate-local/filter-signing (`ed25519-private:<base64 seed>`), generated once per server,
whose ARN and public key (`ed25519:<base64>`) it passes as the template's
FilterSigningSecretArn and FilterPublicKeys unless `--param` names others. It then reads the
SAM template, evaluates its intrinsic functions the way CloudFormation would for a stack of
that name in account 123456789012, region us-east-1 (moto's defaults), and creates every bucket, queue, queue policy, EventBridge rule, KMS key and alias, DynamoDB
table (with its indexes) and Cognito user pool, app client and group it declares, with the
template's settings. In the user pool it creates the local reviewers, reviewer-a and
reviewer-b (group reviewer) and admin-a (group admin), with generated passwords written to
STATE_DIR/review-users.json (mode 0600). It then writes STATE_DIR/stack.env: the endpoint,
dummy credentials, the HASHGATE_* resource names of the outputs, every variable the
template sets in its functions' environments, and the local-only ones (the identity
provider's endpoint, where the review API listens and its URL), as KEY=value lines
(`set -a; . .local/stack.env; set +a`). It does not start the review API (scripts/stack.sh
does); REVIEW_PORT is where it is to listen: 8790 by default, a free port with `--port 0`
unless `--review-port` says otherwise. Running `up` again is harmless: it reuses the
running server (and its review port), creates whatever is missing, keeps the reviewers'
passwords and rewrites stack.env.

The template is the only source of names and settings. A resource type this script does
not emulate (functions, roles, alarms, dashboards…) is listed as skipped; a property of an
emulated type that it does not know is an error, so the local stack never silently differs
from the deployed one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import secrets
import socket
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import base64

import boto3
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = REPO / "infra" / "template.yaml"
DEFAULT_STATE_DIR = REPO / ".local"

# Template parameters the local stack sets unless told otherwise.
LOCAL_PARAMS = {"ReporterEmail": "reports@hashgate.test", "ReportServiceName": "hashgate local"}

# moto's default account; the region every local client uses.
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"

# The local filter signing key: a Secrets Manager secret of the emulator whose SecretString
# is the private key's text form, and the text forms' prefixes (shared/src/manifest.rs).
SIGNING_SECRET = "hashgate-local/filter-signing"
PRIVATE_KEY_PREFIX = "ed25519-private:"
PUBLIC_KEY_PREFIX = "ed25519:"
# The template parameters the key is passed as.
SIGNING_PARAMS = ("FilterSigningSecretArn", "FilterPublicKeys")

# Template output -> variable in stack.env. Every one must be an output of the template.
OUTPUT_ENV = {
    "UploadBucketName": "HASHGATE_UPLOAD_BUCKET",
    "QuarantineBucketName": "HASHGATE_QUARANTINE_BUCKET",
    "FilterBucketName": "HASHGATE_FILTER_BUCKET",
    "ListsBucketName": "HASHGATE_LISTS_BUCKET",
    "HashTableName": "HASHGATE_HASH_TABLE",
    "CaseTableName": "HASHGATE_CASE_TABLE",
    "AuditTableName": "HASHGATE_AUDIT_TABLE",
    "ScanQueueUrl": "HASHGATE_SCAN_QUEUE_URL",
    "ScanDeadLetterQueueUrl": "HASHGATE_SCAN_DLQ_URL",
    "ListsQueueUrl": "HASHGATE_LISTS_QUEUE_URL",
    "ListsDeadLetterQueueUrl": "HASHGATE_LISTS_DLQ_URL",
    "ReviewQueueUrl": "HASHGATE_REVIEW_QUEUE_URL",
    "AuditCheckpointBucketName": "HASHGATE_AUDIT_CHECKPOINT_BUCKET",
    "ReportsBucketName": "HASHGATE_REPORTS_BUCKET",
    "AuditSigningKeyArn": "HASHGATE_AUDIT_SIGNING_KEY",
    "ReviewUserPoolId": "HASHGATE_USER_POOL_ID",
    "ReviewUserPoolClientId": "HASHGATE_USER_POOL_CLIENT_ID",
}

# The people of the local review queue: user name -> the group of the template's user pool
# they are put in. Their generated passwords go to STATE_DIR/review-users.json.
REVIEW_USERS = {"reviewer-a": "reviewer", "reviewer-b": "reviewer", "admin-a": "admin"}

# Where the review API listens locally unless --port 0 (a free port) or --review-port.
DEFAULT_REVIEW_PORT = 8790

# Tag on each KMS key created here, so a second `up` finds the key again (keys have no name).
KEY_TAG = "hashgate-local:logical-id"


class TemplateError(Exception):
    """Something in the template that cannot be evaluated or emulated; names where."""


class StackError(Exception):
    """The emulator or the state directory is not in the expected state."""


# --------------------------------------------------------------------------------------
# Loading the template: YAML with CloudFormation's short-form tags
# --------------------------------------------------------------------------------------


class CfnLoader(yaml.SafeLoader):
    """A safe YAML loader that turns `!Ref x` into {"Ref": "x"}, `!Sub s` into
    {"Fn::Sub": s}, `!GetAtt A.b` into {"Fn::GetAtt": ["A", "b"]}, and so on."""


def _construct_short_form(loader: CfnLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_short_form)


def load_template(path: Path) -> dict:
    try:
        with path.open(encoding="utf-8") as f:
            template = yaml.load(f, Loader=CfnLoader)  # noqa: S506 - a SafeLoader subclass
    except OSError as e:
        raise TemplateError(f"{path}: cannot read: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise TemplateError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise TemplateError(f"{path}: no Resources section")
    return template


# --------------------------------------------------------------------------------------
# Evaluating intrinsic functions
# --------------------------------------------------------------------------------------

NO_VALUE = object()  # AWS::NoValue: the property is removed
SUB_VAR = re.compile(r"\$\{([^}]*)\}")


@dataclass
class Created:
    """What a resource resolves to: its Ref value and its GetAtt attributes."""

    ref: str
    attrs: dict[str, str] = field(default_factory=dict)


class Evaluator:
    """Evaluates a template for one stack name and parameter set, as CloudFormation would."""

    def __init__(self, template: dict, path: Path, stack: str, overrides: dict[str, str]):
        self.template = template
        self.path = path
        self.stack = stack
        self.params = self._parameters(overrides)
        self.pseudo = {
            "AWS::StackName": stack,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Region": REGION,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{stack}/local",
            "AWS::NotificationARNs": [],
        }
        self.resources: dict[str, Created] = {}  # filled in as resources are created
        self._conditions: dict[str, bool] = {}

    def where(self, *parts: str) -> str:
        return f"{self.path}: " + ".".join(parts)

    def _parameters(self, overrides: dict[str, str]) -> dict[str, Any]:
        declared = self.template.get("Parameters") or {}
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise TemplateError(f"{self.path}: Parameters: no parameter named {', '.join(unknown)}")
        values = {}
        for name, spec in declared.items():
            if name in overrides:
                value = overrides[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise TemplateError(
                    f"{self.where('Parameters', name)}: no Default; pass --param {name}=VALUE"
                )
            # CloudFormation hands every parameter to the template as a string.
            value = str(value)
            allowed = spec.get("AllowedValues")
            if allowed is not None and value not in [str(a) for a in allowed]:
                raise TemplateError(f"{self.where('Parameters', name)}: {value!r} is not one of {allowed}")
            # A CommaDelimitedList is a list of strings ("" is [""], as in CloudFormation).
            values[name] = value.split(",") if spec.get("Type") == "CommaDelimitedList" else value
        return values

    def condition(self, name: str, where: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions") or {}
            if name not in conditions:
                raise TemplateError(f"{where}: no condition named {name!r}")
            self._conditions[name] = bool(self.eval(conditions[name], self.where("Conditions", name)))
        return self._conditions[name]

    def eval(self, value: Any, where: str) -> Any:
        """The value with every intrinsic function evaluated; `where` names it in errors."""
        if isinstance(value, list):
            out = [self.eval(v, f"{where}[{i}]") for i, v in enumerate(value)]
            return [v for v in out if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            handler = self._functions.get(key)
            if handler is not None:
                return handler(self, arg, f"{where}.{key}")
        out = {}
        for k, v in value.items():
            evaluated = self.eval(v, f"{where}.{k}")
            if evaluated is not NO_VALUE:
                out[k] = evaluated
        return out

    # -- the functions ------------------------------------------------------------------

    def _ref(self, name: Any, where: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        return self._resource(name, where).ref

    def _resource(self, name: str, where: str) -> Created:
        if name in self.resources:
            return self.resources[name]
        if name in self.template["Resources"]:
            raise TemplateError(f"{where}: refers to {name}, which is not created (its Condition is false)")
        # The SAM transform generates resources named after the AWS::Serverless::* resource
        # they belong to (ScannerRole for Scanner); like it, they are not emulated.
        for logical, spec in self.template["Resources"].items():
            if name.startswith(logical) and str(spec.get("Type", "")).startswith("AWS::Serverless::"):
                return not_emulated(name)
        raise TemplateError(f"{where}: no parameter or resource named {name!r}")

    def _get_att(self, arg: Any, where: str) -> Any:
        if not (isinstance(arg, list) and len(arg) == 2):
            raise TemplateError(f"{where}: expected [Resource, Attribute], got {arg!r}")
        name, attribute = arg[0], self.eval(arg[1], where)
        created = self._resource(name, where)
        if attribute not in created.attrs:
            raise TemplateError(
                f"{where}: {name} has no attribute {attribute!r} here (known: {sorted(created.attrs)})"
            )
        return created.attrs[attribute]

    def _sub(self, arg: Any, where: str) -> str:
        if isinstance(arg, list):
            if len(arg) != 2 or not isinstance(arg[1], dict):
                raise TemplateError(f"{where}: expected a string or [string, {{variables}}]")
            text, variables = arg[0], {k: self.eval(v, f"{where}[1].{k}") for k, v in arg[1].items()}
        else:
            text, variables = arg, {}
        if not isinstance(text, str):
            raise TemplateError(f"{where}: expected a string, got {text!r}")

        def replace(m: re.Match) -> str:
            var = m.group(1)
            if var.startswith("!"):  # ${!Literal} is the literal text ${Literal}
                return "${" + var[1:] + "}"
            if var in variables:
                return str(variables[var])
            if "." in var and not var.startswith("AWS::"):
                return str(self._get_att(var.split(".", 1), where))
            return str(self._ref(var, where))

        return SUB_VAR.sub(replace, text)

    def _if(self, arg: Any, where: str) -> Any:
        if not (isinstance(arg, list) and len(arg) == 3):
            raise TemplateError(f"{where}: expected [Condition, IfTrue, IfFalse]")
        chosen = 1 if self.condition(arg[0], where) else 2
        return self.eval(arg[chosen], f"{where}[{chosen}]")

    def _equals(self, arg: Any, where: str) -> bool:
        if not (isinstance(arg, list) and len(arg) == 2):
            raise TemplateError(f"{where}: expected [a, b]")
        a, b = (self.eval(v, where) for v in arg)
        return str(a) == str(b)

    def _not(self, arg: Any, where: str) -> bool:
        if not (isinstance(arg, list) and len(arg) == 1):
            raise TemplateError(f"{where}: expected [condition]")
        return not self.eval(arg[0], where)

    def _and(self, arg: Any, where: str) -> bool:
        return all(self.eval(v, where) for v in arg)

    def _or(self, arg: Any, where: str) -> bool:
        return any(self.eval(v, where) for v in arg)

    def _join(self, arg: Any, where: str) -> str:
        if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str)):
            raise TemplateError(f"{where}: expected [delimiter, [values]]")
        sep, items = arg
        values = self.eval(items, where)
        if not isinstance(values, list):
            raise TemplateError(f"{where}: expected a list of values, got {values!r}")
        return sep.join(str(v) for v in values)

    def _select(self, arg: Any, where: str) -> Any:
        index, items = self.eval(arg, where)
        return items[int(index)]

    def _split(self, arg: Any, where: str) -> list:
        sep, text = self.eval(arg, where)
        return str(text).split(sep)

    def _find_in_map(self, arg: Any, where: str) -> Any:
        name, top, second = self.eval(arg, where)
        try:
            return self.template["Mappings"][name][top][second]
        except (KeyError, TypeError) as e:
            raise TemplateError(f"{where}: no mapping {name}.{top}.{second}") from e

    def _unsupported(self, _arg: Any, where: str) -> Any:
        raise TemplateError(f"{where}: not supported by the local stack")

    _functions: dict[str, Callable[[Evaluator, Any, str], Any]] = {
        "Ref": _ref,
        "Fn::GetAtt": _get_att,
        "Fn::Sub": _sub,
        "Fn::If": _if,
        "Fn::Equals": _equals,
        "Fn::Not": _not,
        "Fn::And": _and,
        "Fn::Or": _or,
        "Fn::Join": _join,
        "Fn::Select": _select,
        "Fn::Split": _split,
        "Fn::FindInMap": _find_in_map,
        "Condition": lambda self, name, where: self.condition(name, where),
        "Fn::ImportValue": _unsupported,
        "Fn::GetAZs": _unsupported,
        "Fn::Transform": _unsupported,
    }

    # -- resources in creation order ------------------------------------------------------

    def active_resources(self) -> list[str]:
        """Logical ids whose Condition holds, dependencies first (template order otherwise)."""
        resources = self.template["Resources"]
        active = [
            name
            for name, spec in resources.items()
            if "Condition" not in spec
            or self.condition(spec["Condition"], self.where("Resources", name, "Condition"))
        ]
        deps = {name: _references(resources[name], set(resources)) & set(active) - {name} for name in active}
        ordered: list[str] = []
        visiting: list[str] = []

        def visit(name: str) -> None:
            if name in ordered:
                return
            if name in visiting:
                cycle = " -> ".join(visiting[visiting.index(name) :] + [name])
                raise TemplateError(f"{self.path}: Resources: dependency cycle: {cycle}")
            visiting.append(name)
            for dep in sorted(deps[name], key=active.index):
                visit(dep)
            visiting.pop()
            ordered.append(name)

        for name in active:
            visit(name)
        return ordered


def _references(value: Any, names: set[str]) -> set[str]:
    """Every logical id that a resource refers to (Ref, GetAtt, Sub) or DependsOn."""
    found: set[str] = set()
    if isinstance(value, list):
        for v in value:
            found |= _references(v, names)
    elif isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref" and isinstance(v, str):
                found.add(v)
            elif k == "Fn::GetAtt":
                found.add(v[0] if isinstance(v, list) else str(v).split(".")[0])
            elif k == "Fn::Sub":
                text = v[0] if isinstance(v, list) else v
                if isinstance(text, str):
                    found |= {m.split(".")[0] for m in SUB_VAR.findall(text)}
            elif k == "DependsOn":
                found |= {v} if isinstance(v, str) else set(v)
            found |= _references(v, names)
    return found & names


# --------------------------------------------------------------------------------------
# Creating resources on the emulator
# --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    created: Created
    action: str  # "created", "exists" or "updated"
    summary: str


class Provisioner:
    """Creates (or finds) each supported resource type from its evaluated properties."""

    def __init__(self, endpoint: str, stack: str):
        self.stack = stack
        config = Config(retries={"max_attempts": 2}, s3={"addressing_style": "path"})
        session = boto3.session.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION
        )
        self.s3 = session.client("s3", endpoint_url=endpoint, config=config)
        self.sqs = session.client("sqs", endpoint_url=endpoint, config=config)
        self.ddb = session.client("dynamodb", endpoint_url=endpoint, config=config)
        self.kms = session.client("kms", endpoint_url=endpoint, config=config)
        self.events = session.client("events", endpoint_url=endpoint, config=config)
        self.idp = session.client("cognito-idp", endpoint_url=endpoint, config=config)
        self.handlers: dict[str, Callable[[str, dict, str], Outcome]] = {
            "AWS::S3::Bucket": self.bucket,
            "AWS::SQS::Queue": self.queue,
            "AWS::SQS::QueuePolicy": self.queue_policy,
            "AWS::Events::Rule": self.event_rule,
            "AWS::DynamoDB::Table": self.table,
            "AWS::KMS::Key": self.kms_key,
            "AWS::KMS::Alias": self.kms_alias,
            "AWS::Cognito::UserPool": self.user_pool,
            "AWS::Cognito::UserPoolClient": self.user_pool_client,
            "AWS::Cognito::UserPoolGroup": self.user_pool_group,
        }

    # -- S3 ---------------------------------------------------------------------------------

    BUCKET_PROPS = {
        "BucketName",
        "VersioningConfiguration",
        "PublicAccessBlockConfiguration",
        "OwnershipControls",
        "BucketEncryption",
        "NotificationConfiguration",
        "ObjectLockEnabled",
        "ObjectLockConfiguration",
        "Tags",
    }

    def bucket(self, logical: str, props: dict, where: str) -> Outcome:
        name = props.get("BucketName") or f"{self.stack}-{logical.lower()}-{ACCOUNT_ID}-{REGION}"
        lock = _bool(props.get("ObjectLockEnabled", False))
        try:
            self.s3.head_bucket(Bucket=name)
            action = "exists"
        except ClientError as e:
            if _code(e) not in ("404", "NoSuchBucket", "NotFound"):
                raise
            self.s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=lock)
            action = "created"
        notes = []

        if "VersioningConfiguration" in props:
            status = props["VersioningConfiguration"]["Status"]
            self.s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})
            notes.append(f"versioning {status.lower()}")
        if "ObjectLockConfiguration" in props:
            cfg = props["ObjectLockConfiguration"]
            api: dict[str, Any] = {"ObjectLockEnabled": cfg.get("ObjectLockEnabled", "Enabled")}
            retention = (cfg.get("Rule") or {}).get("DefaultRetention")
            if retention:
                rule = {"Mode": retention["Mode"]}
                for unit in ("Days", "Years"):
                    if unit in retention:
                        rule[unit] = int(retention[unit])
                api["Rule"] = {"DefaultRetention": rule}
                span = ", ".join(f"{rule[u]} {u.lower()}" for u in ("Days", "Years") if u in rule)
                notes.append(f"object lock {rule['Mode']} {span}")
            # moto refuses to set it on a bucket that holds objects (a second `up` after
            # a quarantine or a checkpoint), so an unchanged configuration is left alone.
            if self._current_object_lock(name) != api:
                self.s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration=api)
        if "PublicAccessBlockConfiguration" in props:
            pab = {k: _bool(v) for k, v in props["PublicAccessBlockConfiguration"].items()}
            self.s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=pab)
            notes.append("public access blocked" if all(pab.values()) else "public access partly blocked")
        if "OwnershipControls" in props:
            self.s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
        if "BucketEncryption" in props:
            rules = []
            for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]:
                api_rule: dict[str, Any] = {}
                if "ServerSideEncryptionByDefault" in rule:
                    api_rule["ApplyServerSideEncryptionByDefault"] = rule["ServerSideEncryptionByDefault"]
                    notes.append(
                        rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"].replace("AES256", "SSE-S3")
                    )
                if "BucketKeyEnabled" in rule:
                    api_rule["BucketKeyEnabled"] = _bool(rule["BucketKeyEnabled"])
                rules.append(api_rule)
            self.s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "NotificationConfiguration" in props:
            api_notif, described = self._notifications(
                props["NotificationConfiguration"], f"{where}.Properties.NotificationConfiguration"
            )
            # Setting a notification makes S3 (and moto) send an s3:TestEvent message to
            # each queue, so a second `up` leaves an unchanged configuration alone.
            if self._current_notifications(name) != api_notif:
                self.s3.put_bucket_notification_configuration(
                    Bucket=name, NotificationConfiguration=api_notif
                )
            notes.extend(described)
        if "Tags" in props:
            self.s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": props["Tags"]})

        arn = f"arn:{PARTITION}:s3:::{name}"
        attrs = {
            "Arn": arn,
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{REGION}.amazonaws.com",
        }
        return Outcome(Created(name, attrs), action, f"{name} ({', '.join(notes)})")

    @staticmethod
    def _notifications(cfg: dict, where: str) -> tuple[dict, list[str]]:
        """CloudFormation's NotificationConfiguration in the S3 API's shape."""
        api: dict[str, Any] = {}
        described = []
        kinds = {
            "QueueConfigurations": ("Queue", "QueueArn", "QueueConfigurations"),
            "TopicConfigurations": ("Topic", "TopicArn", "TopicConfigurations"),
            "LambdaConfigurations": ("Function", "LambdaFunctionArn", "LambdaFunctionConfigurations"),
        }
        for key, value in cfg.items():
            if key == "EventBridgeConfiguration":
                if _bool(value.get("EventBridgeEnabled", False)):
                    api["EventBridgeConfiguration"] = {}
                    described.append("events -> EventBridge")
                continue
            if key not in kinds:
                raise TemplateError(f"{where}.{key}: not emulated by scripts/localstack.py")
            target_key, api_target_key, api_key = kinds[key]
            items = []
            for item in value:
                api_item: dict[str, Any] = {api_target_key: item[target_key], "Events": [item["Event"]]}
                rules = ((item.get("Filter") or {}).get("S3Key") or {}).get("Rules")
                keys = ""
                if rules:
                    api_item["Filter"] = {"Key": {"FilterRules": rules}}
                    keys = " of " + " ".join(
                        f"{r['Value']}*" if r["Name"].lower() == "prefix" else f"*{r['Value']}" for r in rules
                    )
                items.append(api_item)
                described.append(f"{item['Event']}{keys} -> {item[target_key].rsplit(':', 1)[-1]}")
            api[api_key] = items
        return api, described

    def _current_object_lock(self, bucket: str) -> dict | None:
        """The bucket's object lock configuration in the shape `bucket` builds (moto
        reports the unset one of Days and Years as 0)."""
        try:
            current = self.s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
        except ClientError as e:
            if _code(e) != "ObjectLockConfigurationNotFoundError":
                raise
            return None
        retention = (current.get("Rule") or {}).get("DefaultRetention")
        if retention:
            for unit in ("Days", "Years"):
                if not retention.get(unit):
                    retention.pop(unit, None)
        return current

    def _current_notifications(self, bucket: str) -> dict:
        """The bucket's notification configuration in the shape _notifications builds."""
        current = self.s3.get_bucket_notification_configuration(Bucket=bucket)
        current.pop("ResponseMetadata", None)
        for items in current.values():
            if isinstance(items, list):
                for item in items:
                    item.pop("Id", None)  # assigned by S3; the template sets none
        return current

    # -- EventBridge ------------------------------------------------------------------------

    def event_rule(self, logical: str, props: dict, where: str) -> Outcome:
        name = props.get("Name") or f"{self.stack}-{logical}"
        bus = props.get("EventBusName", "default")
        api: dict[str, Any] = {
            "Name": name,
            "EventBusName": bus,
            "State": props.get("State", "ENABLED"),
            "EventPattern": json.dumps(props["EventPattern"]),
        }
        if "Description" in props:
            api["Description"] = props["Description"]
        arn = self.events.put_rule(**api)["RuleArn"]
        # A target this script does not emulate (the alarm topic) is left out: the rule
        # still matches, its events go nowhere.
        all_targets = [{"Id": t["Id"], "Arn": t["Arn"]} for t in props.get("Targets") or []]
        targets = [t for t in all_targets if _emulated_arn(t["Arn"])]
        if targets:
            self.events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        to = ", ".join(t["Arn"].rsplit(":", 1)[-1] for t in targets) or "no emulated target"
        left_out = [t["Id"] for t in all_targets if t not in targets]
        if left_out:
            to += f" ({', '.join(left_out)} not emulated)"
        return Outcome(Created(name, {"Arn": arn}), "updated", f"{bus}: {name} -> {to}")

    # -- SQS --------------------------------------------------------------------------------

    # CloudFormation properties that are SQS queue attributes of the same name.
    QUEUE_ATTRIBUTES = {
        "VisibilityTimeout",
        "MessageRetentionPeriod",
        "DelaySeconds",
        "MaximumMessageSize",
        "ReceiveMessageWaitTimeSeconds",
        "SqsManagedSseEnabled",
        "KmsMasterKeyId",
        "KmsDataKeyReusePeriodSeconds",
        "FifoQueue",
        "ContentBasedDeduplication",
        "DeduplicationScope",
        "FifoThroughputLimit",
        "RedrivePolicy",
        "RedriveAllowPolicy",
    }

    def queue(self, logical: str, props: dict, where: str) -> Outcome:
        name = props.get("QueueName") or f"{self.stack}-{logical}"
        attributes = {k: _attribute(v) for k, v in props.items() if k in self.QUEUE_ATTRIBUTES}
        try:
            url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
            # FifoQueue is fixed at creation; everything else is brought in line.
            settable = {k: v for k, v in attributes.items() if k != "FifoQueue"}
            if settable:
                self.sqs.set_queue_attributes(QueueUrl=url, Attributes=settable)
            action = "exists"
        except ClientError as e:
            if "NonExistentQueue" not in _code(e):
                raise
            tags = {t["Key"]: t["Value"] for t in props.get("Tags", [])}
            url = self.sqs.create_queue(QueueName=name, Attributes=attributes, tags=tags)["QueueUrl"]
            action = "created"
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        notes = [
            f"{k}={v}" for k, v in attributes.items() if k not in ("RedrivePolicy", "RedriveAllowPolicy")
        ]
        if "RedrivePolicy" in props:
            redrive = props["RedrivePolicy"]
            target = redrive["deadLetterTargetArn"].rsplit(":", 1)[-1]
            notes.append(f"dead letters -> {target} after {redrive['maxReceiveCount']} receives")
        return Outcome(
            Created(url, {"Arn": arn, "QueueName": name, "QueueUrl": url}),
            action,
            f"{name} ({', '.join(notes)})",
        )

    def queue_policy(self, logical: str, props: dict, where: str) -> Outcome:
        policy = json.dumps(props["PolicyDocument"])
        for url in props["Queues"]:
            self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
        names = ", ".join(url.rsplit("/", 1)[-1] for url in props["Queues"])
        return Outcome(Created(f"{self.stack}-{logical}"), "updated", f"policy on {names}")

    # -- DynamoDB ---------------------------------------------------------------------------

    TABLE_PROPS = {
        "TableName",
        "BillingMode",
        "AttributeDefinitions",
        "KeySchema",
        "ProvisionedThroughput",
        "GlobalSecondaryIndexes",
        "LocalSecondaryIndexes",
        "StreamSpecification",
        "SSESpecification",
        "PointInTimeRecoverySpecification",
        "TimeToLiveSpecification",
        "DeletionProtectionEnabled",
        "TableClass",
        "Tags",
    }

    def table(self, logical: str, props: dict, where: str) -> Outcome:
        name = props.get("TableName") or f"{self.stack}-{logical}"
        key_schema = props["KeySchema"]
        try:
            described = self.ddb.describe_table(TableName=name)["Table"]
            if described["KeySchema"] != key_schema:
                raise StackError(
                    f"table {name} exists with key schema {described['KeySchema']}, but "
                    f"{where}.Properties.KeySchema says {key_schema}: run `down` and `up` again"
                )
            have = {i["IndexName"]: i["KeySchema"] for i in described.get("GlobalSecondaryIndexes", [])}
            want = {i["IndexName"]: i["KeySchema"] for i in props.get("GlobalSecondaryIndexes", [])}
            if have != want:
                raise StackError(
                    f"table {name} exists with global secondary indexes {have}, but "
                    f"{where}.Properties.GlobalSecondaryIndexes says {want}: run `down` and `up` again"
                )
            action = "exists"
        except ClientError as e:
            if _code(e) != "ResourceNotFoundException":
                raise
            args: dict[str, Any] = {
                "TableName": name,
                "AttributeDefinitions": props["AttributeDefinitions"],
                "KeySchema": key_schema,
                "BillingMode": props.get("BillingMode", "PROVISIONED"),
            }
            for key in (
                "ProvisionedThroughput",
                "GlobalSecondaryIndexes",
                "LocalSecondaryIndexes",
                "TableClass",
                "Tags",
            ):
                if key in props:
                    args[key] = props[key]
            if "DeletionProtectionEnabled" in props:
                args["DeletionProtectionEnabled"] = _bool(props["DeletionProtectionEnabled"])
            if "StreamSpecification" in props:
                args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
            if "SSESpecification" in props:
                sse = props["SSESpecification"]
                args["SSESpecification"] = {
                    "Enabled": _bool(sse.get("SSEEnabled", False)),
                    **({"SSEType": sse["SSEType"]} if "SSEType" in sse else {}),
                    **({"KMSMasterKeyId": sse["KMSMasterKeyId"]} if "KMSMasterKeyId" in sse else {}),
                }
            self.ddb.create_table(**args)
            self.ddb.get_waiter("table_exists").wait(
                TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
            )
            action = "created"
        notes = [" + ".join(f"{k['AttributeName']} ({k['KeyType']})" for k in key_schema)]
        for index in props.get("GlobalSecondaryIndexes", []):
            keys = " + ".join(f"{k['AttributeName']} ({k['KeyType']})" for k in index["KeySchema"])
            notes.append(f"index {index['IndexName']}: {keys}")
        pitr = props.get("PointInTimeRecoverySpecification")
        if pitr is not None:
            enabled = _bool(pitr.get("PointInTimeRecoveryEnabled", False))
            self.ddb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": enabled}
            )
            if enabled:
                notes.append("point-in-time recovery")
        ttl = props.get("TimeToLiveSpecification")
        if ttl is not None and _bool(ttl.get("Enabled", False)):
            try:
                self.ddb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
                )
            except ClientError as e:  # "TimeToLive is already enabled" on a second `up`
                if _code(e) != "ValidationException":
                    raise
            notes.append(f"ttl on {ttl['AttributeName']}")
        table = self.ddb.describe_table(TableName=name)["Table"]
        attrs = {"Arn": table["TableArn"]}
        if "LatestStreamArn" in table:
            attrs["StreamArn"] = table["LatestStreamArn"]
        return Outcome(Created(name, attrs), action, f"{name} ({', '.join(notes)})")

    # -- KMS --------------------------------------------------------------------------------

    def kms_key(self, logical: str, props: dict, where: str) -> Outcome:
        tag_value = f"{self.stack}/{logical}"
        key_id = self._find_key(tag_value)
        action = "exists"
        if key_id is None:
            args: dict[str, Any] = {
                "Tags": [{"TagKey": KEY_TAG, "TagValue": tag_value}]
                + [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in props.get("Tags", [])],
            }
            if "KeyPolicy" in props:
                args["Policy"] = json.dumps(props["KeyPolicy"])
            for key in ("Description", "KeySpec", "KeyUsage"):
                if key in props:
                    args[key] = props[key]
            key_id = self.kms.create_key(**args)["KeyMetadata"]["KeyId"]
            action = "created"
        notes = [f"{props['KeySpec']} {props.get('KeyUsage', '')}".strip()] if "KeySpec" in props else []
        if not _bool(props.get("Enabled", True)):
            self.kms.disable_key(KeyId=key_id)
            notes.append("disabled")
        if _bool(props.get("EnableKeyRotation", False)):
            self.kms.enable_key_rotation(KeyId=key_id)
            notes.append("rotation on")
        arn = self.kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
        return Outcome(
            Created(key_id, {"Arn": arn, "KeyId": key_id}), action, f"{key_id} ({', '.join(notes)})"
        )

    def _find_key(self, tag_value: str) -> str | None:
        for page in self.kms.get_paginator("list_keys").paginate():
            for key in page["Keys"]:
                tags = self.kms.list_resource_tags(KeyId=key["KeyId"]).get("Tags", [])
                if {"TagKey": KEY_TAG, "TagValue": tag_value} in tags:
                    return key["KeyId"]
        return None

    def kms_alias(self, logical: str, props: dict, where: str) -> Outcome:
        name, target = props["AliasName"], props["TargetKeyId"]
        existing = {a["AliasName"]: a.get("TargetKeyId") for a in self.kms.list_aliases()["Aliases"]}
        if name not in existing:
            self.kms.create_alias(AliasName=name, TargetKeyId=target)
            action = "created"
        elif existing[name] != target:
            self.kms.update_alias(AliasName=name, TargetKeyId=target)
            action = "updated"
        else:
            action = "exists"
        return Outcome(Created(name), action, f"{name} -> {target}")

    # -- Cognito ----------------------------------------------------------------------------

    # CloudFormation properties of AWS::Cognito::UserPool passed to CreateUserPool as they
    # are (UserPoolName is its PoolName; EnabledMfas is set with SetUserPoolMfaConfig).
    USER_POOL_API_PROPS = {
        "AccountRecoverySetting",
        "AdminCreateUserConfig",
        "AliasAttributes",
        "AutoVerifiedAttributes",
        "DeletionProtection",
        "DeviceConfiguration",
        "MfaConfiguration",
        "Policies",
        "Schema",
        "UserPoolAddOns",
        "UserPoolTags",
        "UserPoolTier",
        "UsernameAttributes",
        "UsernameConfiguration",
    }

    def user_pool(self, logical: str, props: dict, where: str) -> Outcome:
        name = props.get("UserPoolName") or f"{self.stack}-{logical}"
        pool_id = self._find_user_pool(name)
        action = "exists"
        if pool_id is None:
            args = {k: v for k, v in props.items() if k in self.USER_POOL_API_PROPS}
            pool_id = self.idp.create_user_pool(PoolName=name, **args)["UserPool"]["Id"]
            action = "created"
        notes = []
        mfa = props.get("MfaConfiguration", "OFF")
        enabled = props.get("EnabledMfas") or []
        if enabled:
            unknown = sorted(set(enabled) - {"SOFTWARE_TOKEN_MFA"})
            if unknown:
                raise TemplateError(f"{where}.Properties.EnabledMfas: {', '.join(unknown)}: not emulated")
            self.idp.set_user_pool_mfa_config(
                UserPoolId=pool_id,
                SoftwareTokenMfaConfiguration={"Enabled": True},
                MfaConfiguration=mfa,
            )
        notes.append(f"MFA {mfa.lower()}" + (f" ({', '.join(enabled)})" if enabled else ""))
        if _bool((props.get("AdminCreateUserConfig") or {}).get("AllowAdminCreateUserOnly", False)):
            notes.append("admins create users")
        policy = (props.get("Policies") or {}).get("PasswordPolicy")
        if policy:
            notes.append(f"passwords of {policy.get('MinimumLength', 8)}+ characters")
        issuer = f"https://cognito-idp.{REGION}.amazonaws.com/{pool_id}"
        attrs = {
            "Arn": f"arn:{PARTITION}:cognito-idp:{REGION}:{ACCOUNT_ID}:userpool/{pool_id}",
            "ProviderName": issuer.removeprefix("https://"),
            "ProviderURL": issuer,
            "UserPoolId": pool_id,
        }
        return Outcome(Created(pool_id, attrs), action, f"{name}: {pool_id} ({', '.join(notes)})")

    def _find_user_pool(self, name: str) -> str | None:
        found = [
            pool["Id"]
            for page in self.idp.get_paginator("list_user_pools").paginate(MaxResults=60)
            for pool in page["UserPools"]
            if pool["Name"] == name
        ]
        if len(found) > 1:
            raise StackError(f"{len(found)} user pools are named {name}: run `down` and `up` again")
        return found[0] if found else None

    # CloudFormation properties of AWS::Cognito::UserPoolClient; CreateUserPoolClient takes
    # them under the same names.
    USER_POOL_CLIENT_PROPS = {
        "UserPoolId",
        "ClientName",
        "GenerateSecret",
        "ExplicitAuthFlows",
        "AccessTokenValidity",
        "IdTokenValidity",
        "RefreshTokenValidity",
        "AuthSessionValidity",
        "TokenValidityUnits",
        "PreventUserExistenceErrors",
        "EnableTokenRevocation",
        "EnablePropagateAdditionalUserContextData",
        "ReadAttributes",
        "WriteAttributes",
        "SupportedIdentityProviders",
        "CallbackURLs",
        "LogoutURLs",
        "DefaultRedirectURI",
        "AllowedOAuthFlows",
        "AllowedOAuthScopes",
        "AllowedOAuthFlowsUserPoolClient",
    }

    def user_pool_client(self, logical: str, props: dict, where: str) -> Outcome:
        pool_id = props["UserPoolId"]
        name = props.get("ClientName") or f"{self.stack}-{logical}"
        found = [
            client
            for page in self.idp.get_paginator("list_user_pool_clients").paginate(
                UserPoolId=pool_id, MaxResults=60
            )
            for client in page["UserPoolClients"]
            if client["ClientName"] == name
        ]
        if found:
            client_id, action = found[0]["ClientId"], "exists"
            client = self.idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)[
                "UserPoolClient"
            ]
        else:
            args = {k: v for k, v in props.items() if k != "ClientName"}
            for key in ("GenerateSecret", "EnableTokenRevocation", "AllowedOAuthFlowsUserPoolClient"):
                if key in args:
                    args[key] = _bool(args[key])
            client = self.idp.create_user_pool_client(ClientName=name, **args)["UserPoolClient"]
            client_id, action = client["ClientId"], "created"
        attrs = {"ClientId": client_id, "Name": name}
        if client.get("ClientSecret"):
            attrs["ClientSecret"] = client["ClientSecret"]
        flows = ", ".join(props.get("ExplicitAuthFlows") or [])
        return Outcome(Created(client_id, attrs), action, f"{name}: {client_id} ({flows})")

    def user_pool_group(self, logical: str, props: dict, where: str) -> Outcome:
        pool_id, name = props["UserPoolId"], props["GroupName"]
        try:
            self.idp.get_group(UserPoolId=pool_id, GroupName=name)
            action = "exists"
        except ClientError as e:
            if _code(e) != "ResourceNotFoundException":
                raise
            args = {k: props[k] for k in ("Description", "Precedence", "RoleArn") if k in props}
            if "Precedence" in args:
                args["Precedence"] = int(args["Precedence"])
            self.idp.create_group(UserPoolId=pool_id, GroupName=name, **args)
            action = "created"
        return Outcome(Created(name), action, f"{name} in {pool_id}")

    def review_users(self, pool_id: str, known: dict[str, str]) -> dict[str, str]:
        """Create (or find) REVIEW_USERS in the pool with permanent passwords, each in its
        group; a password of `known` is kept, the others are generated. User name ->
        password."""
        passwords = {}
        for user, group in REVIEW_USERS.items():
            password = known.get(user) or _password()
            try:
                self.idp.admin_get_user(UserPoolId=pool_id, Username=user)
            except ClientError as e:
                if _code(e) != "UserNotFoundException":
                    raise
                self.idp.admin_create_user(UserPoolId=pool_id, Username=user, MessageAction="SUPPRESS")
            self.idp.admin_set_user_password(
                UserPoolId=pool_id, Username=user, Password=password, Permanent=True
            )
            try:
                self.idp.admin_add_user_to_group(UserPoolId=pool_id, Username=user, GroupName=group)
            except ClientError as e:
                if _code(e) == "ResourceNotFoundException":
                    raise StackError(
                        f"user pool {pool_id} has no group {group!r} for {user}: the template's "
                        "AWS::Cognito::UserPoolGroup resources must declare it"
                    ) from e
                raise
            passwords[user] = password
        return passwords

    # -- status -------------------------------------------------------------------------------

    def exists(self, rtype: str, name: str) -> bool:
        try:
            if rtype == "AWS::S3::Bucket":
                self.s3.head_bucket(Bucket=name)
            elif rtype == "AWS::SQS::Queue":
                self.sqs.get_queue_url(QueueName=name)
            elif rtype == "AWS::DynamoDB::Table":
                self.ddb.describe_table(TableName=name)
            elif rtype == "AWS::KMS::Alias":
                self.kms.describe_key(KeyId=name)
            elif rtype == "AWS::Cognito::UserPool":
                return self._find_user_pool(name) is not None
            return True
        except ClientError:
            return False


# The properties each emulated type understands. Anything else is refused, so the local
# stack cannot silently drift from the template.
PROPERTIES: dict[str, set[str]] = {
    "AWS::S3::Bucket": Provisioner.BUCKET_PROPS,
    "AWS::SQS::Queue": Provisioner.QUEUE_ATTRIBUTES | {"QueueName", "Tags"},
    "AWS::SQS::QueuePolicy": {"Queues", "PolicyDocument"},
    "AWS::DynamoDB::Table": Provisioner.TABLE_PROPS,
    "AWS::KMS::Key": {
        "Description",
        "EnableKeyRotation",
        "KeyPolicy",
        "KeySpec",
        "KeyUsage",
        "Enabled",
        "Tags",
    },
    "AWS::KMS::Alias": {"AliasName", "TargetKeyId"},
    "AWS::Events::Rule": {"Name", "Description", "EventBusName", "EventPattern", "State", "Targets"},
    "AWS::Cognito::UserPool": Provisioner.USER_POOL_API_PROPS | {"UserPoolName", "EnabledMfas"},
    "AWS::Cognito::UserPoolClient": Provisioner.USER_POOL_CLIENT_PROPS,
    "AWS::Cognito::UserPoolGroup": {"UserPoolId", "GroupName", "Description", "Precedence", "RoleArn"},
}


# Types deliberately not created locally, and why (reported instead of "not emulated").
NOT_APPLIED = {
    # moto enforces a bucket policy's Deny statements without evaluating their conditions,
    # and every local request is plain HTTP from one principal: the TLS-only and role-based
    # statements would deny everything. tests/infra/template.rs, cfn-lint and checkov check
    # them instead.
    "AWS::S3::BucketPolicy": "not applied locally: moto would enforce it without its conditions",
}


def check_properties(rtype: str, props: Any, where: str) -> None:
    if not isinstance(props, dict):
        raise TemplateError(f"{where}.Properties: expected a mapping, got {props!r}")
    unknown = sorted(set(props) - PROPERTIES[rtype])
    if unknown:
        raise TemplateError(
            f"{where}.Properties: {', '.join(unknown)}: not emulated by scripts/localstack.py "
            "(add it there so the local stack keeps matching the template)"
        )


def check_template(evaluator: Evaluator) -> None:
    """Refuse, before anything starts, a template the local stack could not build faithfully."""
    resources = evaluator.template["Resources"]
    for logical in evaluator.active_resources():
        spec = resources[logical]
        if not isinstance(spec, dict) or "Type" not in spec:
            raise TemplateError(f"{evaluator.where('Resources', logical)}: no Type")
        props = spec.get("Properties") or {}
        # A Properties block chosen whole by Fn::If is checked once evaluated.
        if spec["Type"] in PROPERTIES and not (len(props) == 1 and "Fn::If" in props):
            check_properties(spec["Type"], props, evaluator.where("Resources", logical))


def _emulated_arn(arn: str) -> bool:
    """Whether an ARN names something the emulator holds (not a placeholder of a resource
    that is not emulated, whose Ref is its bare logical id)."""
    return arn.startswith("arn:") and ":local-not-emulated:" not in arn


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def _bool(value: Any) -> bool:
    """A template boolean: YAML true/false or CloudFormation's "true"/"false" strings."""
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise TemplateError(f"not a boolean: {value!r}")


def _password(length: int = 24) -> str:
    """A random password with lower and upper case letters, digits and symbols, as any
    Cognito password policy accepts."""
    classes = [string.ascii_lowercase, string.ascii_uppercase, string.digits, "!#%+-.=@_"]
    alphabet = "".join(classes)
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(c in cls for c in password) for cls in classes):
            return password


def _attribute(value: Any) -> str:
    """A CloudFormation property value as an SQS attribute string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


# --------------------------------------------------------------------------------------
# The moto server process
# --------------------------------------------------------------------------------------


@dataclass
class State:
    """The files of one local stack in its state directory."""

    dir: Path

    @property
    def pid_file(self) -> Path:
        return self.dir / "moto.pid"

    @property
    def port_file(self) -> Path:
        return self.dir / "moto.port"

    @property
    def log_file(self) -> Path:
        return self.dir / "moto.log"

    @property
    def env_file(self) -> Path:
        return self.dir / "stack.env"

    @property
    def review_port_file(self) -> Path:
        return self.dir / "review.port"

    @property
    def users_file(self) -> Path:
        return self.dir / "review-users.json"

    def running(self) -> tuple[int, int] | None:
        """(pid, port) of this state directory's moto server if it is alive, else None;
        a stale pid file (the process is gone or is not moto) is removed."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if not _is_moto(pid):
            self.pid_file.unlink(missing_ok=True)
            self.port_file.unlink(missing_ok=True)
            return None
        try:
            port = int(self.port_file.read_text().strip())
        except (OSError, ValueError) as e:
            raise StackError(
                f"{self.port_file}: missing or not a port number, but moto (pid {pid}) runs: run `down` first"
            ) from e
        return pid, port


def _is_moto(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():  # Linux: make sure a recycled pid is not some other program
        return b"moto" in cmdline.read_bytes()
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_taken(port: int) -> bool:
    """Whether something already listens on 127.0.0.1:port. SO_REUSEADDR as the server
    sets it, so a socket of a server just stopped (TIME_WAIT) does not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def _answers(endpoint: str) -> bool:
    try:
        # Any HTTP answer (moto's S3 ListBuckets on "/") means the server is serving.
        urllib.request.urlopen(endpoint + "/", timeout=2).close()
        return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def _moto_command(port: int) -> list[str]:
    beside = Path(sys.executable).parent / "moto_server"
    if beside.exists():
        return [str(beside), "-H", "127.0.0.1", "-p", str(port)]
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


def start_server(state: State, port: int, timeout: float = 30.0) -> tuple[int, int]:
    """Start moto in the background, detached from this process; (pid, port) once it answers."""
    state.dir.mkdir(parents=True, exist_ok=True)
    attempts = 3 if port == 0 else 1  # a port picked free can be taken before moto binds it
    for attempt in range(attempts):
        chosen = _free_port() if port == 0 else port
        if port != 0 and _port_taken(port):
            # Otherwise the other program's answers would pass for moto's.
            raise StackError(
                f"127.0.0.1:{port} is already in use by another program (another local stack? "
                f"`status --state-dir DIR` tells; or pass --port 0 for a free port)"
            )
        with state.log_file.open("ab") as log:
            log.write(f"--- localstack.py: starting moto on 127.0.0.1:{chosen}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                _moto_command(chosen),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survives `make` and the shell that started it
            )
        endpoint = f"http://127.0.0.1:{chosen}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if _answers(endpoint) and proc.poll() is None:
                state.pid_file.write_text(f"{proc.pid}\n")
                state.port_file.write_text(f"{chosen}\n")
                return proc.pid, chosen
            time.sleep(0.2)
        if proc.poll() is None:
            proc.terminate()
            proc.wait(5)
            raise StackError(f"moto on {endpoint} did not answer within {timeout:.0f}s; see {state.log_file}")
        if attempt + 1 == attempts:
            tail = "".join(state.log_file.read_text(errors="replace").splitlines(keepends=True)[-5:])
            raise StackError(
                f"moto exited with status {proc.returncode} on {endpoint}; "
                f"last lines of {state.log_file}:\n{tail}"
            )
    raise AssertionError("unreachable")


def stop_server(state: State) -> int | None:
    """Stop this state directory's moto server; its pid, or None when none was running."""
    running = state.running()
    if running is None:
        return None
    pid, _ = running
    os.kill(pid, signal.SIGTERM)
    for _ in range(50):
        if not _is_moto(pid):
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    state.pid_file.unlink(missing_ok=True)
    state.port_file.unlink(missing_ok=True)
    return pid


# --------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------


def signing_key(endpoint: str) -> tuple[str, str, str]:
    """The local filter signing key in the emulator's Secrets Manager: (secret ARN, public
    key text, "created" or "exists"). Generated (Ed25519) and stored the first time, read
    back afterwards, so every `up` of one server signs with the same key."""
    config = Config(retries={"max_attempts": 2})
    client = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION
    ).client("secretsmanager", endpoint_url=endpoint, config=config)
    try:
        found = client.get_secret_value(SecretId=SIGNING_SECRET)
        arn, text, action = found["ARN"], found["SecretString"], "exists"
    except ClientError as e:
        if _code(e) != "ResourceNotFoundException":
            raise StackError(f"secret {SIGNING_SECRET}: the emulator refused it: {e}") from e
        seed = Ed25519PrivateKey.generate().private_bytes_raw()
        text = PRIVATE_KEY_PREFIX + base64.b64encode(seed).decode("ascii")
        arn = client.create_secret(
            Name=SIGNING_SECRET,
            Description="hashgate local stack: the filter manifests' Ed25519 signing key",
            SecretString=text,
        )["ARN"]
        action = "created"
    if not text.startswith(PRIVATE_KEY_PREFIX):
        raise StackError(f"secret {SIGNING_SECRET} does not hold an {PRIVATE_KEY_PREFIX}<base64> key")
    try:
        seed = base64.b64decode(text.removeprefix(PRIVATE_KEY_PREFIX), validate=True)
        key = Ed25519PrivateKey.from_private_bytes(seed)
    except ValueError as e:
        # The error names no part of the key.
        raise StackError(f"secret {SIGNING_SECRET}: not a 32-byte Ed25519 seed in base64") from e
    public = PUBLIC_KEY_PREFIX + base64.b64encode(key.public_key().public_bytes_raw()).decode("ascii")
    return arn, public, action


def placeholder_signing_params() -> dict[str, str]:
    """Well-formed stand-ins for the signing key's parameters, for evaluating the template
    before the emulator (and so the key) is there."""
    return {
        "FilterSigningSecretArn": (
            f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:{SIGNING_SECRET}-000000"
        ),
        "FilterPublicKeys": PUBLIC_KEY_PREFIX + base64.b64encode(bytes(32)).decode("ascii"),
    }


def provision(evaluator: Evaluator, endpoint: str) -> list[tuple[str, str, str, str]]:
    """Create every emulated resource; (action, type, logical id, summary) for each."""
    provisioner = Provisioner(endpoint, evaluator.stack)
    resources = evaluator.template["Resources"]
    report = []
    for logical in evaluator.active_resources():
        spec = resources[logical]
        rtype = spec.get("Type", "")
        where = evaluator.where("Resources", logical)
        handler = provisioner.handlers.get(rtype)
        if handler is None:
            # Not emulated: references to it evaluate to placeholders, so resources that
            # merely mention it (policies, outputs) still work locally.
            evaluator.resources[logical] = not_emulated(logical)
            report.append(("skipped", rtype, logical, NOT_APPLIED.get(rtype, "not emulated locally")))
            continue
        props = evaluator.eval(spec.get("Properties") or {}, f"{where}.Properties")
        check_properties(rtype, props, where)
        try:
            outcome = handler(logical, props, where)
        except (KeyError, TypeError) as e:
            raise TemplateError(f"{where}.Properties: missing or malformed {e}") from e
        except ClientError as e:
            raise StackError(f"{where}: the emulator refused it: {e}") from e
        evaluator.resources[logical] = outcome.created
        report.append((outcome.action, rtype, logical, outcome.summary))
    return report


def not_emulated(logical: str) -> Created:
    """A placeholder for a resource that is not emulated: its Ref is its logical id and
    every attribute a placeholder ARN, good enough for policies and outputs that name it."""
    return Created(
        logical, _AnyAttribute(f"arn:{PARTITION}:local-not-emulated:{REGION}:{ACCOUNT_ID}:{logical}")
    )


class _AnyAttribute(dict):
    """Attributes of a resource that is not emulated: any attribute is a placeholder."""

    def __init__(self, placeholder: str):
        super().__init__()
        self.placeholder = placeholder

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return self.placeholder if key == "Arn" else f"{self.placeholder}.{key}"


def outputs(evaluator: Evaluator) -> dict[str, str]:
    result = {}
    for name, spec in (evaluator.template.get("Outputs") or {}).items():
        where = evaluator.where("Outputs", name)
        if "Condition" in spec and not evaluator.condition(spec["Condition"], where):
            continue
        result[name] = str(evaluator.eval(spec["Value"], f"{where}.Value"))
    return result


def function_environment(evaluator: Evaluator) -> dict[str, str]:
    """The environment variables every function of the template is deployed with, so a
    function run locally (the scanner worker) gets exactly the deployed configuration."""
    merged: dict[str, str] = {}
    resources = evaluator.template["Resources"]
    for logical in evaluator.active_resources():
        spec = resources[logical]
        if spec.get("Type") != "AWS::Serverless::Function":
            continue
        where = evaluator.where("Resources", logical, "Properties", "Environment", "Variables")
        raw = ((spec.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
        for name, value in evaluator.eval(raw, where).items():
            value = str(value)
            if merged.get(name, value) != value:
                raise TemplateError(
                    f"{where}.{name}: {value!r}, but another function sets {merged[name]!r} "
                    "(stack.env holds one value per variable)"
                )
            merged[name] = value
    return merged


def write_env(
    state: State,
    endpoint: str,
    stack: str,
    template: Path,
    values: dict[str, str],
    functions: dict[str, str],
    local: dict[str, str],
) -> None:
    missing = [name for name in OUTPUT_ENV if name not in values]
    if missing:
        raise TemplateError(
            f"{template}: Outputs: missing {', '.join(missing)} (needed for {state.env_file})"
        )
    lines = [
        f"# Local AWS stack {stack!r} on moto, from {template}; written by scripts/localstack.py.",
        f"# Load with: set -a; . {state.env_file}; set +a",
        f"AWS_ENDPOINT_URL={endpoint}",
        "AWS_ACCESS_KEY_ID=test",
        "AWS_SECRET_ACCESS_KEY=test",
        f"AWS_REGION={REGION}",
        f"AWS_DEFAULT_REGION={REGION}",
    ]
    written = {env: values[output] for output, env in OUTPUT_ENV.items()}
    for name, value in functions.items():
        if written.get(name, value) != value:
            raise TemplateError(
                f"{template}: {name} is {value!r} in a function's environment but the outputs "
                f"give {written[name]!r}"
            )
        written[name] = value
    # What only the local stack has (its identity provider endpoint, where the review API
    # listens): the emulator's, whatever a deployed function would use.
    written.update(local)
    lines += [f"{name}={shlex.quote(value)}" for name, value in written.items()]
    tmp = state.env_file.with_suffix(".env.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(state.env_file)


def cmd_up(args: argparse.Namespace) -> int:
    state = State(args.state_dir)
    template = load_template(args.template)
    own_key = not all(name in args.params for name in SIGNING_PARAMS)
    # A template error stops us before anything starts (the key is made once moto runs).
    stand_in = {**placeholder_signing_params(), **args.params} if own_key else args.params
    check_template(Evaluator(template, _rel(args.template), args.stack, stand_in))

    running = state.running()
    if running is not None:
        pid, port = running
        if args.port not in (0, port):
            print(f"note: moto already runs on port {port}, not {args.port}; using it", file=sys.stderr)
        print(f"moto already up at http://127.0.0.1:{port} (pid {pid}, log {_rel(state.log_file)})")
    else:
        pid, port = start_server(state, args.port)
        print(f"moto up at http://127.0.0.1:{port} (pid {pid}, log {_rel(state.log_file)})")
    endpoint = f"http://127.0.0.1:{port}"
    if not _answers(endpoint):
        raise StackError(f"moto (pid {pid}) does not answer on {endpoint}; run `down` and `up` again")

    overrides = dict(args.params)
    if own_key:
        arn, public, action = signing_key(endpoint)
        print(f"filter signing key: {action} in secret {SIGNING_SECRET} (public key {public})")
        overrides = {"FilterSigningSecretArn": arn, "FilterPublicKeys": public, **overrides}
    evaluator = Evaluator(template, _rel(args.template), args.stack, overrides)
    params = ", ".join(f"{k}={v}" for k, v in evaluator.params.items())
    print(f"stack {args.stack!r} from {_rel(args.template)} ({params}):")
    for action, rtype, logical, summary in provision(evaluator, endpoint):
        print(f"  {action:<8} {rtype:<28} {logical:<28} {summary}")
    review_port = _review_port(state, args.review_port, args.port, reused=running is not None)
    local = {
        # The API fetches <endpoint>/<pool id>/.well-known/jwks.json, the page signs in there.
        "HASHGATE_IDP_ENDPOINT": endpoint,
        "HASHGATE_REVIEW_BIND": f"127.0.0.1:{review_port}",
        "HASHGATE_REVIEW_URL": f"http://127.0.0.1:{review_port}",
    }
    pools = [
        evaluator.resources[logical].ref
        for logical in evaluator.active_resources()
        if evaluator.template["Resources"][logical].get("Type") == "AWS::Cognito::UserPool"
    ]
    if len(pools) > 1:
        raise TemplateError(f"{_rel(args.template)}: {len(pools)} user pools; the local reviewers go in one")
    if pools:
        create_review_users(state, endpoint, args.stack, pools[0])
    write_env(
        state,
        endpoint,
        args.stack,
        _rel(args.template),
        outputs(evaluator),
        function_environment(evaluator),
        local,
    )
    print(f"wrote {_rel(state.env_file)}")
    return 0


def create_review_users(state: State, endpoint: str, stack: str, pool_id: str) -> None:
    """REVIEW_USERS in the pool; their passwords in STATE_DIR/review-users.json (0600),
    kept from an earlier `up` of the same server."""
    try:
        known = json.loads(state.users_file.read_text())
        known = {k: v for k, v in known.items() if isinstance(v, str)} if isinstance(known, dict) else {}
    except (OSError, ValueError):
        known = {}
    with_groups = ", ".join(f"{user} ({group})" for user, group in REVIEW_USERS.items())
    passwords = Provisioner(endpoint, stack).review_users(pool_id, known)
    tmp = state.users_file.with_suffix(".json.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(passwords, f, indent=2)
        f.write("\n")
    os.chmod(tmp, 0o600)  # an older file of another mode is replaced, not reused
    tmp.replace(state.users_file)
    print(f"reviewers {with_groups} in {pool_id}; passwords in {_rel(state.users_file)}")


def _review_port(state: State, requested: int | None, moto_port: int, reused: bool) -> int:
    """Where the review API is to listen: --review-port if given (0: a free port); else the
    port of an earlier `up` of this running server; else 8790, or a free port when moto's
    was picked free (--port 0), so private stacks never collide."""
    if requested is None and reused:
        try:
            return int(state.review_port_file.read_text().strip())
        except (OSError, ValueError):
            pass
    if requested is None:
        requested = 0 if moto_port == 0 else DEFAULT_REVIEW_PORT
    port = _free_port() if requested == 0 else requested
    state.review_port_file.write_text(f"{port}\n")
    return port


def cmd_down(args: argparse.Namespace) -> int:
    state = State(args.state_dir)
    pid = stop_server(state)
    # They would point at a server that is gone (moto keeps no users once stopped).
    state.env_file.unlink(missing_ok=True)
    state.users_file.unlink(missing_ok=True)
    state.review_port_file.unlink(missing_ok=True)
    if pid is None:
        print(f"moto was not running (no live pid in {_rel(state.pid_file)})")
    else:
        print(f"moto stopped (pid {pid}); its log stays in {_rel(state.log_file)}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state = State(args.state_dir)
    running = state.running()
    if running is None:
        print(f"moto: down (no live pid in {_rel(state.pid_file)})")
        return 1
    pid, port = running
    endpoint = f"http://127.0.0.1:{port}"
    answers = _answers(endpoint)
    print(f"moto: up at {endpoint} (pid {pid}){'' if answers else ', but NOT answering'}")
    if not answers:
        return 1
    # Only names are evaluated here: the signing key's parameters name none.
    params = {**placeholder_signing_params(), **args.params}
    evaluator = Evaluator(load_template(args.template), _rel(args.template), args.stack, params)
    provisioner = Provisioner(endpoint, args.stack)
    name_props = {
        "AWS::S3::Bucket": "BucketName",
        "AWS::SQS::Queue": "QueueName",
        "AWS::DynamoDB::Table": "TableName",
        "AWS::KMS::Alias": "AliasName",
        "AWS::Cognito::UserPool": "UserPoolName",
    }
    missing = 0
    print(f"stack {args.stack!r} from {_rel(args.template)}:")
    for logical in evaluator.active_resources():
        spec = evaluator.template["Resources"][logical]
        prop = name_props.get(spec.get("Type", ""))
        if prop is None:
            continue
        where = evaluator.where("Resources", logical, "Properties", prop)
        name = evaluator.eval((spec.get("Properties") or {}).get(prop), where)
        if not isinstance(name, str):
            print(f"  {'?':<8} {spec['Type']:<28} {logical:<28} (no {prop} in the template)")
            continue
        present = provisioner.exists(spec["Type"], name)
        missing += not present
        print(f"  {'present' if present else 'MISSING':<8} {spec['Type']:<28} {logical:<28} {name}")
    env = state.env_file
    print(f"env: {_rel(env)}" if env.exists() else f"env: {_rel(env)} missing (run `up`)")
    return 1 if missing else 0


def _rel(path: Path) -> Path:
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def _param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="where moto.pid, moto.port, moto.log, stack.env, review.port and review-users.json "
        "live (default: .local)",
    )
    stack = argparse.ArgumentParser(add_help=False)
    stack.add_argument(
        "--stack", default="hashgate", help="stack name, as in ${AWS::StackName} (default: hashgate)"
    )
    stack.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help="default: infra/template.yaml")
    stack.add_argument(
        "--param",
        dest="param_list",
        action="append",
        type=_param,
        default=[],
        metavar="NAME=VALUE",
        help="override a template parameter's default (repeatable)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", parents=[common, stack], help="start moto and create the stack")
    up.add_argument(
        "--port", type=int, default=4566, help="port on 127.0.0.1; 0 picks a free one (default: 4566)"
    )
    up.add_argument(
        "--review-port",
        type=int,
        default=None,
        help="port on 127.0.0.1 for the review API (stack.env's HASHGATE_REVIEW_BIND); 0 picks a "
        "free one (default: the running stack's, else 8790, or a free one with --port 0)",
    )
    sub.add_parser("down", parents=[common], help="stop moto")
    sub.add_parser("status", parents=[common, stack], help="is moto up, which resources exist")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `status | head` ends quietly
    # The local stack files reports as a placeholder reporter, so a confirmation writes its
    # package locally as it would deployed (a deployment names its own: ReporterEmail).
    args.params = {**LOCAL_PARAMS, **dict(getattr(args, "param_list", []))}
    if args.command == "up" and not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port}: not a port number")
    if args.command == "up" and args.review_port is not None and not 0 <= args.review_port <= 65535:
        parser.error(f"--review-port {args.review_port}: not a port number")
    try:
        return {"up": cmd_up, "down": cmd_down, "status": cmd_status}[args.command](args)
    except (TemplateError, StackError) as e:
        print(f"localstack.py {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
