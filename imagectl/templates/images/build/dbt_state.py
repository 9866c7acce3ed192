#!/usr/bin/env python3
"""Fetch or store dbt state files (manifest.json, run_results.json) at an S3 URI or a local directory.

usage: dbt_state.py get URI DEST_DIR   -> exit 0 if manifest.json was fetched, 3 if there is none
       dbt_state.py put URI SRC_DIR    -> uploads manifest.json and run_results.json
S3 credentials come from the AWS credential chain; AWS_ENDPOINT_URL_S3 points it elsewhere (tests: moto).
"""

import shutil
import sys
from pathlib import Path

FILES = ("manifest.json", "run_results.json")
NO_STATE = 3


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    return bucket, prefix.strip("/")


def get(uri: str, dest: Path) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    if uri.startswith("s3://"):
        import boto3
        from botocore.exceptions import ClientError

        bucket, prefix = split_s3(uri)
        s3 = boto3.client("s3")
        try:
            s3.download_file(bucket, f"{prefix}/manifest.json" if prefix else "manifest.json", str(dest / "manifest.json"))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NoSuchBucket"):
                return NO_STATE
            raise
        return 0
    source = Path(uri) / "manifest.json"
    if not source.is_file():
        return NO_STATE
    shutil.copy(source, dest / "manifest.json")
    return 0


def put(uri: str, src: Path) -> int:
    files = [src / name for name in FILES if (src / name).is_file()]
    if uri.startswith("s3://"):
        import boto3

        bucket, prefix = split_s3(uri)
        s3 = boto3.client("s3")
        for path in files:
            s3.upload_file(str(path), bucket, f"{prefix}/{path.name}" if prefix else path.name)
    else:
        Path(uri).mkdir(parents=True, exist_ok=True)
        for path in files:
            shutil.copy(path, Path(uri) / path.name)
    print(f"dbt_state: stored {', '.join(p.name for p in files)} at {uri}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("get", "put"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    action, uri, directory = sys.argv[1:]
    sys.exit(get(uri, Path(directory)) if action == "get" else put(uri, Path(directory)))
