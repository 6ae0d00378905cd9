"""Shared fixtures: a real S3 endpoint on loopback (moto's server mode) for the s3:// tests."""

from __future__ import annotations

import logging
import socket
import threading
import uuid

import pytest


class S3Server:
    """moto's S3 server (``ThreadedMotoServer``'s setup) in a thread on 127.0.0.1.

    ``stop``/``start`` keep the port and, since moto's state lives in this process, the buckets, so
    tests can simulate an endpoint outage. Connections are not kept alive (HTTP/1.0): once stopped,
    every request is refused, as with a real endpoint going away.
    """

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        class Handler(MotoRequestHandler):
            protocol_version = "HTTP/1.0"

        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server("127.0.0.1", self.port, app, threaded=True, request_handler=Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()  # serve_forever returns and closes the listening socket
            self._thread.join()
            self._server = None

    def env(self) -> dict[str, str]:
        """The standard AWS environment pointing at this endpoint (dummy credentials)."""
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def new_bucket(self) -> str:
        name = f"omnivad-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@pytest.fixture(scope="session")
def s3_server():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = S3Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server, monkeypatch):
    """A fresh bucket, with the AWS environment of this test pointing at the loopback endpoint."""
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return s3_server.new_bucket()


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tests use tiny tensors: one intra-op thread is fastest and robust to a loaded machine."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray with 2 CPUs for one test module (Ray Data progress bars off)."""
    import ray

    from omnivad.data.ray_datasets import quiet_progress

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    quiet_progress()
    yield
    ray.shutdown()

