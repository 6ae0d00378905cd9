"""Shared fixtures: a real S3 endpoint on loopback (moto's server mode) for the s3:// tests."""

from __future__ import annotations

import json
import logging
import operator
import os
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


@pytest.fixture(scope="session", autouse=True)
def _deterministic_torch():
    """Every test, and every module- or session-scoped fixture that trains, runs on one intra-op thread with
    torch's deterministic algorithms on.

    Session scope on purpose: a function-scoped fixture would be set up *after* the module-scoped fixtures that
    train the learning tests' models, so those would run on as many threads as the machine has cores (and a
    reduction's order, hence its rounding, depends on the thread count). One thread is also the fastest setting
    for the tests' tiny tensors on a loaded 2-core machine. Kernels still differ across CPU models (AVX2 vs
    AVX-512 vs AMX code paths in oneDNN/BLAS): that is what the learning claims' measured margins are for
    (tests/README.md)."""
    import torch

    n, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(det)
    torch.set_num_threads(n)


# ---------------------------------------------------------------------------------------------- learning claims
LEARNING_SEED = int(os.environ.get("OMNIVAD_TEST_SEED", "0"))
"""Offset added to every learning test's seeds (corpus, benchmark, training); tests/margins.py sweeps it."""

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


@pytest.fixture
def claim(request: pytest.FixtureRequest):
    """``claim(name, value, op, bar, msg="")``: assert a learning claim ``value op bar`` and, when
    ``OMNIVAD_MARGINS_OUT`` names a file, append the measured statistic to it (one JSON line) before asserting,
    so ``python tests/margins.py`` can report each claim's distribution over seeds and the margin its bar keeps."""

    out = os.environ.get("OMNIVAD_MARGINS_OUT")
    failed: list[str] = []

    def check(name: str, value: float, op: str, bar: float, msg: str = "") -> None:
        value = float(value)
        text = f"{name} = {value:.4f}, claimed {op} {bar} (OMNIVAD_TEST_SEED={LEARNING_SEED}) {msg}"
        if not out:
            assert _OPS[op](value, bar), text
            return
        rec = {"test": request.node.nodeid, "claim": name, "seed": LEARNING_SEED, "value": value, "op": op,
               "bar": float(bar)}
        with open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
        if not _OPS[op](value, bar):
            failed.append(text)  # measuring: record the test's later claims too, fail at teardown

    yield check
    if failed:
        pytest.fail("; ".join(failed))


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray with 2 CPUs for one test module (Ray Data progress bars off)."""
    import ray

    from omnivad.data.ray_datasets import quiet_progress

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    quiet_progress()
    yield
    ray.shutdown()



@pytest.fixture(autouse=True)
def _omnivad_logs_reach_caplog():
    """``omnivad.logs.logger()`` stops propagation (its own stderr handler, no duplicate lines under Ray); in tests
    the ``omnivad`` loggers propagate again, so ``caplog`` sees them whichever test configured the logger first."""
    import logging

    log = logging.getLogger("omnivad")
    before = log.propagate
    log.propagate = True
    yield
    log.propagate = before
