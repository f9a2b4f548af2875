#!/usr/bin/env python3
"""Upload sample files to the local stack's upload bucket and report what hashgate did.

    demo.py [--state-dir .local] [--timeout 60] [--list-timeout 120]

Reads STATE_DIR/stack.env (written by `make up`), uploads the fixture files (some are on the
sample hash lists that `make up` imports) and a few generated ones, waits until every upload
has a result, and prints: each upload's result, the cases opened, what is in quarantine and
on the review queue, and where reviewers sign in to see them. Then it shows a hash-list
update end to end: it drops a one-line list naming the MD5 of a freshly generated file into
the lists bucket (incoming/demo-dropped/), and uploads that file until the scanner
quarantines it, which takes hashlist-sync's import and signed publication and the scanner's
next filter refresh (at most --list-timeout seconds). The sample files are harmless text and
random bytes.
"""

from __future__ import annotations

import argparse
import hashlib
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
    # A mirrored copy of the photo whose PDQ hash tests/fixtures/perceptual.csv lists: no
    # exact digest matches it, its PDQ (one of its eight variants) does.
    pdq_images = REPO / "tests" / "fixtures" / "pdq" / "images"
    items += [
        ("photos/2026/bridge (mirrored).jpg", (pdq_images / "bridge-5-flipx.jpg").read_bytes()),
        ("photos/2026/other photo.jpg", (pdq_images / "q2821.jpg").read_bytes()),
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


def settled_list_file(s3, bucket: str, name: str) -> tuple[str, str] | None:
    """Where hashlist-sync put a dropped list file: ("applied" or "rejected", key), or None
    while it is not there yet."""
    for outcome in ("applied", "rejected"):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{outcome}/")
        for page in pages:
            for obj in page.get("Contents", []):
                if obj["Key"].endswith(f"demo-dropped/{name}"):
                    return outcome, obj["Key"]
    return None


def list_update(s3, dynamo, env: dict[str, str], timeout: float) -> bool:
    """Drop a list naming a fresh file's MD5 into the lists bucket, then upload the file
    until the scanner quarantines it; print what happened and how long it took."""
    lists_bucket, uploads_bucket = env["HASHGATE_LISTS_BUCKET"], env["HASHGATE_UPLOAD_BUCKET"]
    body = b"hashgate demo: a file that a list names only after it is first seen\n" + os.urandom(32)
    md5 = hashlib.md5(body).hexdigest()  # noqa: S324 - the list's digest, not a security use
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    name = f"{stamp}-{md5[:8]}.txt"
    list_key = f"incoming/demo-dropped/{name}"
    text = f"# hashgate demo: dropped into the lists bucket by scripts/demo.py\n{md5}\n"
    print(f"\n== hash-list update: dropping s3://{lists_bucket}/{list_key}")
    print(f"   (one entry: MD5 {md5} of a file generated just now)")
    started = time.monotonic()
    deadline = started + timeout
    s3.put_object(Bucket=lists_bucket, Key=list_key, Body=text.encode())

    settled = None
    while time.monotonic() < deadline and settled is None:
        settled = settled_list_file(s3, lists_bucket, name)
        if settled is None:
            time.sleep(0.5)
    if settled is None:
        print(f"   the list was not imported within {timeout:.0f} s: see hashlist-sync's log")
        return False
    outcome, key = settled
    took = time.monotonic() - started
    if outcome == "rejected":
        reason = s3.get_object(Bucket=lists_bucket, Key=key + ".reason.json")["Body"].read().decode()
        print(f"   REJECTED after {took:.1f} s: s3://{lists_bucket}/{key}\n   {reason.strip()}")
        return False
    print(f"   imported and published as a signed filter in {took:.1f} s (now {key})")

    # Until the scanner's next filter refresh an upload of the file is still clean; each
    # attempt is a new key, and the first quarantined one ends the wait.
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        last = None
        key = f"demo-list-update/fresh-{stamp}-{attempt}.bin"
        version = s3.put_object(Bucket=uploads_bucket, Key=key, Body=body).get("VersionId")
        while time.monotonic() < deadline:
            quarantined = {c["key"]["S"]: c for c in cases(dynamo, env["HASHGATE_CASE_TABLE"])}
            if key in quarantined:
                case = quarantined[key]
                record = json.loads(case["record"]["S"])
                lists = ", ".join(sorted({m["list"] for m in record["matches"]}))
                total = time.monotonic() - started
                print(
                    f"   upload {attempt} ({key}) QUARANTINED as case {case['case_id']['S']} "
                    f"(lists: {lists}), {total:.1f} s after the list was dropped"
                )
                return True
            last = result(s3, uploads_bucket, key, version, {})
            if last is not None:
                break
            time.sleep(0.5)
        if last is not None:
            print(f"   upload {attempt} ({key}): {last} (the scanner has not loaded the new filter yet)")
            time.sleep(2)
    print(f"   no upload of the file was quarantined within {timeout:.0f} s: see the scanner's log")
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", type=Path, default=REPO / ".local")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument(
        "--list-timeout",
        type=float,
        default=120.0,
        help="seconds the hash-list update may take, from the drop to a quarantined upload",
    )
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
        kinds = sorted(
            {
                f"perceptual (PDQ, distance {m['distance']})" if "distance" in m else "exact"
                for m in record["matches"]
            }
        )
        where = record.get("quarantine") or {}
        print(f"  {c['case_id']['S']}  {c['status']['S']:<14} {c['key']['S']}")
        print(
            f"      lists: {', '.join(lists)}; match: {', '.join(kinds)}; "
            f"quarantined at s3://{where.get('bucket')}/{where.get('key')}"
        )
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
    updated = list_update(s3, dynamo, env, min(args.list_timeout, 120.0))
    return 0 if scanned == len(versions) and updated else 1


if __name__ == "__main__":
    sys.exit(main())
