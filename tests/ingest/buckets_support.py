"""A real S3-protocol server (moto's server mode) on 127.0.0.1, and boto3 clients to fill its buckets."""

from __future__ import annotations

import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """moto's ThreadedMotoServer; `endpoint` is its URL; `client()` a boto3 S3 client for it."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def upload_tree(self, bucket: str, prefix: str, folder: Path) -> list[str]:
        """Upload every file under `folder` to `bucket/prefix/<relative path>`; their s3:// URLs."""
        s3 = self.client()
        urls = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            key = f"{prefix}/{path.relative_to(folder).as_posix()}".lstrip("/")
            s3.upload_file(str(path), bucket, key)
            urls.append(f"s3://{bucket}/{key}")
        return urls
