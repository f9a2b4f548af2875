#!/usr/bin/env python3
"""Create a Ceph RGW topic through RGW's SNS API and send a bucket's object-created events
to it, as an operator would with the AWS CLI (boto3, from the project's .venv).

    ceph_notify.py ENDPOINT ACCESS_KEY SECRET_KEY BUCKET TOPIC PUSH_ENDPOINT [KEY=VALUE...]

The KEY=VALUE pairs are the topic's attributes beside push-endpoint (amqp-exchange,
amqp-ack-level, persistent, ...). Prints the topic's ARN.
"""

import sys

import boto3


def main():
    endpoint, access, secret, bucket, topic, push, *attributes = sys.argv[1:]
    kw = dict(
        endpoint_url=endpoint,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name="default",
    )
    attrs = {"push-endpoint": push}
    attrs.update(a.split("=", 1) for a in attributes)
    arn = boto3.client("sns", **kw).create_topic(Name=topic, Attributes=attrs)["TopicArn"]
    boto3.client("s3", **kw).put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "TopicConfigurations": [
                {"Id": topic, "TopicArn": arn, "Events": ["s3:ObjectCreated:*"]}
            ]
        },
    )
    print(arn)


if __name__ == "__main__":
    main()
