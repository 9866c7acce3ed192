"""Write a Docker config.json with ECR logins, for the demo's DAG runs (their Docker client pulls prd's images).

    python scripts/ecr-docker-login.py CONFIG.json PROFILE=HOST[@ROLE_ARN] ...

Each login is an ECR authorization token (GetAuthorizationToken) of the profile's identity — assuming ROLE_ARN from it
when given — for HOST. On EKS the kubelet's ECR credential provider does this with the node's role; this is only the
local stack's stand-in for it.
"""

from __future__ import annotations

import json
import sys

import boto3


def token(profile: str, role_arn: str | None) -> str:
    session = boto3.Session(profile_name=profile)
    if role_arn:
        credentials = session.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="demo-docker-login")["Credentials"]
        session = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
    return str(session.client("ecr").get_authorization_token()["authorizationData"][0]["authorizationToken"])


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    auths = {}
    for item in argv[1:]:
        profile, _, target = item.partition("=")
        host, _, role_arn = target.partition("@")
        auths[host] = {"auth": token(profile, role_arn or None)}
    with open(argv[0], "w") as out:
        json.dump({"auths": auths}, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
