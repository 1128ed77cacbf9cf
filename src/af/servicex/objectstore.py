"""The results' S3 server, seen by the service with its admin credentials: one bucket per request, named
``<user key>-<uuid>`` (the client uses the request id as the bucket), and per user an IAM user that may only read
and list that user's buckets (``arn:aws:s3:::<user key>-*``). The client gets that user's key in the
transform status and downloads with it; workers upload through presigned PUT URLs and hold no credentials.

Example:
    >>> user_key("alice")
    'u2bd806c9'
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.client import Config
from botocore.exceptions import ClientError

UPLOAD_SECONDS = 24 * 3600


def user_key(user: str) -> str:
    """A bucket-name-safe, stable key for a hub user (bucket names allow only [a-z0-9-])."""
    return "u" + hashlib.sha256(user.encode()).hexdigest()[:8]


@dataclass
class ObjectStore:
    endpoint: str  # http://127.0.0.1:8333
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    # where clients reach the same server, when not at `endpoint` (e.g. from users' containers or pods)
    public_endpoint: str = ""
    # where the workers that upload outputs reach it, when not at `endpoint` (workers in containers); a presigned
    # URL is signed for its host (SigV4 signs the Host header), so it is made for this address
    upload_endpoint: str = ""
    _user_credentials: dict[str, tuple[str, str]] = field(default_factory=dict)
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _client(self, kind: str, endpoint: str = ""):
        """One boto3 client per kind and endpoint, made once: making one takes tens of ms (one per file of a
        request, in the service's threads, held up its tasks); boto3's clients may be shared between threads."""
        endpoint = endpoint or self.endpoint
        with self._lock:
            if (kind, endpoint) not in self._clients:
                self._clients[kind, endpoint] = boto3.client(
                    kind,
                    endpoint_url=endpoint,
                    aws_access_key_id=self.access_key,
                    aws_secret_access_key=self.secret_key,
                    region_name=self.region,
                    config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
                )
            return self._clients[kind, endpoint]

    @property
    def host(self) -> str:
        """The S3 server's host:port as clients reach it (the transform status's ``minio-endpoint``)."""
        return urlsplit(self.public_endpoint or self.endpoint).netloc

    @property
    def secure(self) -> bool:
        return urlsplit(self.public_endpoint or self.endpoint).scheme == "https"

    def create_bucket(self, bucket: str) -> None:
        try:
            self._client("s3").create_bucket(Bucket=bucket)
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def upload_url(self, bucket: str, key: str) -> str:
        """A presigned PUT URL of `key`, at the address the workers reach (`upload_endpoint`)."""
        return self._client("s3", self.upload_endpoint).generate_presigned_url(
            "put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=UPLOAD_SECONDS
        )

    def delete_bucket(self, bucket: str) -> None:
        s3 = self._client("s3")
        try:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for item in page.get("Contents", []):
                    s3.delete_object(Bucket=bucket, Key=item["Key"])
            s3.delete_bucket(Bucket=bucket)
        except ClientError as error:
            if error.response["Error"]["Code"] != "NoSuchBucket":
                raise

    def user_credentials(self, user: str) -> tuple[str, str]:
        """(access key, secret key) of `user`'s read-only S3 identity, created on first use."""
        if user in self._user_credentials:
            return self._user_credentials[user]
        iam, name = self._client("iam"), user_key(user)
        try:
            iam.create_user(UserName=name)
        except ClientError as error:
            if error.response["Error"]["Code"] != "EntityAlreadyExists":
                raise
        for key in iam.list_access_keys(UserName=name).get("AccessKeyMetadata", []):
            iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])  # secrets are not kept
        created = iam.create_access_key(UserName=name)["AccessKey"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:ListBucket"],
                    "Resource": [f"arn:aws:s3:::{name}-*", f"arn:aws:s3:::{name}-*/*"],
                }
            ],
        }
        iam.put_user_policy(UserName=name, PolicyName="own-results", PolicyDocument=json.dumps(policy))
        self._user_credentials[user] = (created["AccessKeyId"], created["SecretAccessKey"])
        return self._user_credentials[user]
