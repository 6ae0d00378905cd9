"""Issue 14 row 9: the embedded local Ray omnivad starts listens on loopback only and requires a token.

One Ray start (a subprocess, so the process-wide Ray config and token cache of this test session stay as they
are): ``ensure_ray`` as every job calls it, a task, then every listening TCP socket of the driver's process tree
(GCS, raylet, workers, agents, metrics export) and a raw gRPC request to the GCS with and without the token.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
from sockets import listening_tree, non_loopback
import grpc, ray
from omnivad import config
from omnivad.protocols.runner import ensure_ray

ensure_ray(config.load(None, ["ray.num_cpus=1"]))
assert ray.get(ray.remote(lambda: 7).remote()) == 7
gcs = ray.get_runtime_context().gcs_address
socks = listening_tree(os.getpid())
token = open(os.environ["RAY_AUTH_TOKEN_PATH"]).read().strip()
chan = grpc.insecure_channel(gcs)
call = chan.unary_unary("/ray.rpc.NodeInfoGcsService/GetClusterId")
codes = {}
for name, md in (("no_token", None), ("wrong_token", [("authorization", "Bearer " + "0" * 64)]),
                 ("token", [("authorization", "Bearer " + token)])):
    try:
        call(b"", metadata=md, timeout=20)
        codes[name] = "OK"
    except grpc.RpcError as exc:
        codes[name] = exc.code().name
print(json.dumps({"gcs": gcs, "sockets": socks, "outside": non_loopback(socks), "codes": codes,
                  "token_path": os.environ["RAY_AUTH_TOKEN_PATH"]}))
ray.shutdown()
"""


def test_row9_embedded_ray_is_loopback_only_and_token_protected(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(OMNIVAD_HOME=str(tmp_path / "home"), RAY_USAGE_STATS_ENABLED="0",
               PYTHONPATH=str(REPO / "platform") + os.pathsep + env.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(REPO / "tests" / "cluster")], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-4000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["gcs"].startswith("127.0.0.1:"), out
    assert len(out["sockets"]) >= 3, out  # GCS, raylet, a worker at least: the listing did find Ray's sockets
    assert out["outside"] == [], f"Ray listens on a non-loopback address: {out['outside']}"
    assert out["codes"] == {"no_token": "UNAUTHENTICATED", "wrong_token": "UNAUTHENTICATED", "token": "OK"}, out
    token = Path(out["token_path"])
    assert token == tmp_path / "home" / "ray" / "auth_token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600 and stat.S_IMODE(token.parent.stat().st_mode) == 0o700
    assert "token authentication" in r.stderr and "127.0.0.1 only" in r.stderr
