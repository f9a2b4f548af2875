#!/usr/bin/env python3
"""Upload sample files to the local stack's upload bucket and report what hashgate did.

    demo.py [--state-dir .local] [--timeout 60]

Reads STATE_DIR/stack.env (written by `make up`), uploads the fixture files (some are on the
sample hash lists that `make up` imports) and a few generated ones, waits until every upload
has a result, and prints: each upload's result, the cases opened, what is in quarantine and
on the review queue, and where reviewers sign in to see them. The sample files are harmless
text and random bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parent.parent


def load_env(state_dir: Path) -> dict[str, str]:
    env = {}
    for line in (state_dir / "stack.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            env[key.removeprefix("export ").strip()] = value.strip().strip("'\"")
    return env


def cases(dynamo, table: str) -> list[dict]:
    """The case items of the case table (it also holds the reviewers' reveal counters)."""
    items, args = [], {"TableName": table}
    while True:
        page = dynamo.scan(**args)
        items += [i for i in page["Items"] if "record" in i and "key" in i]
        if "LastEvaluatedKey" not in page:
            return items
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def uploads() -> list[tuple[str, bytes]]:
    files = sorted((REPO / "tests" / "fixtures" / "files").iterdir())
    items = [(f"incoming/{f.name}", f.read_bytes()) for f in files]
    items += [
        ("photos/2026/holiday 01.jpg", os.urandom(48_000)),
        ("photos/2026/holiday+02%.jpg", os.urandom(52_000)),
        ("docs/ünïcode report.pdf", os.urandom(9_000)),
    ]
    return items


def result(s3, bucket: str, key: str, version: str | None, quarantine_keys: dict) -> str | None:
    if key in quarantine_keys:
        return f"QUARANTINED  case {quarantine_keys[key]}"
    try:
        args = {"Bucket": bucket, "Key": key}
        if version:
            args["VersionId"] = version
        tags = s3.get_object_tagging(**args)["TagSet"]
    except s3.exceptions.ClientError:
        return None  # gone from the bucket: quarantined, reported once its case lists it
    for tag in tags:
        if tag["Key"] == "hashgate-scan":
            return tag["Value"]
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", type=Path, default=REPO / ".local")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    env = load_env(args.state_dir)
    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    )
    config = Config(s3={"addressing_style": "path"})
    s3 = session.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], config=config)
    dynamo = session.client("dynamodb", endpoint_url=env["AWS_ENDPOINT_URL"])
    sqs = session.client("sqs", endpoint_url=env["AWS_ENDPOINT_URL"])
    bucket = env["HASHGATE_UPLOAD_BUCKET"]

    print(f"\n== uploading to s3://{bucket}")
    versions = {}
    for key, body in uploads():
        out = s3.put_object(Bucket=bucket, Key=key, Body=body)
        versions[key] = out.get("VersionId")
        print(f"  {key}  ({len(body)} bytes)")

    print("\n== waiting for the scanner")
    deadline = time.monotonic() + args.timeout
    results: dict[str, str] = {}
    while time.monotonic() < deadline and len(results) < len(versions):
        opened = cases(dynamo, env["HASHGATE_CASE_TABLE"])
        quarantined = {c["key"]["S"]: c["case_id"]["S"] for c in opened}
        for key, version in versions.items():
            if key not in results:
                r = result(s3, bucket, key, version, quarantined)
                if r:
                    results[key] = r
        time.sleep(0.5)

    print("\n== results")
    width = max(len(k) for k in versions)
    for key in versions:
        print(f"  {key:<{width}}  {results.get(key, 'PENDING (no result yet: see the scanner log)')}")

    opened = cases(dynamo, env["HASHGATE_CASE_TABLE"])
    print(f"\n== cases ({len(opened)})")
    for c in sorted(opened, key=lambda c: c["key"]["S"]):
        record = json.loads(c["record"]["S"])
        lists = sorted({m["list"] for m in record["matches"]})
        where = record.get("quarantine") or {}
        print(f"  {c['case_id']['S']}  {c['status']['S']:<14} {c['key']['S']}")
        print(f"      lists: {', '.join(lists)}; quarantined at s3://{where.get('bucket')}/{where.get('key')}")
    attrs = sqs.get_queue_attributes(
        QueueUrl=env["HASHGATE_REVIEW_QUEUE_URL"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    print(f"\n== review queue: {attrs['ApproximateNumberOfMessages']} case(s) waiting for a reviewer")
    if "HASHGATE_REVIEW_URL" in env:
        users = args.state_dir / "review-users.json"
        print(f"   review them at {env['HASHGATE_REVIEW_URL']}: sign in as reviewer-a or reviewer-b")
        print(f"   (passwords in {users})")
        if "HASHGATE_REPORTS_BUCKET" in env:
            print(
                "   two reviewers' confirmation writes the case's CyberTipline report package to "
                f"s3://{env['HASHGATE_REPORTS_BUCKET']}/reports/<case id>/ and adds its digests "
                "to the own list; `hashgate reports list` shows the packages"
            )
    scanned = len(results)
    clean = sum(1 for r in results.values() if r == "clean")
    print(f"\n== {len(versions)} uploaded, {scanned} scanned: {clean} clean, {len(opened)} quarantined")
    return 0 if scanned == len(versions) else 1


if __name__ == "__main__":
    sys.exit(main())
