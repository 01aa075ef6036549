"""An S3 emulator for tests: moto in server mode, with signature checking on.

`start_emulator` runs ``python -m moto.server`` on a free 127.0.0.1 port. The
emulator starts open; its first requests create an IAM user with an access
key and an inline ``s3:*`` policy, and after those it checks every request's
SigV4 signature and the key's permissions, as AWS does. So tests prove the
driver signs correctly, and a wrong secret is refused (403).

When moto is not installed the callers skip (a failure under CI: see
tests/needs.py).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port
from tests.needs import need_module

# Requests made unauthenticated while setting up: CreateUser, PutUserPolicy,
# CreateAccessKey, CreateRole, PutRolePolicy. Everything after them is signature-checked.
_SETUP_REQUESTS = 5
ROLE_ARN = "arn:aws:iam::123456789012:role/registry-role"
_S3_ONLY = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'
)
REGION = "us-east-1"


@dataclass
class Emulator:
    endpoint: str
    access_key_id: str
    secret_access_key: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self, service: str = "s3") -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )

    def create_bucket(self) -> str:
        name = f"ecloud-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name

    def temporary_credentials(self) -> dict[str, str]:
        """STS AssumeRole credentials (key, secret, session token) for an s3:* role."""
        sts = self.client("sts")
        found = sts.assume_role(RoleArn=ROLE_ARN, RoleSessionName="registry")["Credentials"]
        return {
            "key": found["AccessKeyId"],
            "secret": found["SecretAccessKey"],
            "token": found["SessionToken"],
        }

    def env(self, bucket: str, prefix: str = "registry") -> dict[str, str]:
        """The registry's settings for storage in `bucket`."""
        return {
            "ECLOUD_STORAGE_URL": f"s3://{bucket}/{prefix}",
            "ECLOUD_S3_ENDPOINT": self.endpoint,
            "ECLOUD_S3_REGION": REGION,
            "ECLOUD_S3_ACCESS_KEY_ID": self.access_key_id,
            "ECLOUD_S3_SECRET_ACCESS_KEY": self.secret_access_key,
        }

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def require_moto() -> None:
    need_module("moto.server", pip="moto[server]")
    need_module("boto3", pip="moto[server]")


def start_emulator(root: Path) -> Emulator:
    require_moto()
    import boto3

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = root / "moto.log"
    env = {
        **os.environ,
        "INITIAL_NO_AUTH_ACTION_COUNT": str(_SETUP_REQUESTS),
        "AWS_DEFAULT_REGION": REGION,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"moto exited early:\n{log.read_text()[-4000:]}")
        try:
            httpx.get(endpoint + "/moto-api/", timeout=1)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"moto did not start:\n{log.read_text()[-4000:]}") from None
            time.sleep(0.1)
    try:
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        iam.create_user(UserName="registry")
        iam.put_user_policy(
            UserName="registry",
            PolicyName="s3",
            PolicyDocument='{"Version":"2012-10-17","Statement":'
            '[{"Effect":"Allow","Action":["s3:*","sts:AssumeRole"],"Resource":"*"}]}',
        )
        key = iam.create_access_key(UserName="registry")["AccessKey"]
        # A role for temporary credentials (ECLOUD_S3_SESSION_TOKEN).
        iam.create_role(
            RoleName="registry-role",
            AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
            '"Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}',
        )
        iam.put_role_policy(RoleName="registry-role", PolicyName="s3", PolicyDocument=_S3_ONLY)
    except BaseException:
        process.kill()
        raise
    return Emulator(endpoint, key["AccessKeyId"], key["SecretAccessKey"], process, log)
