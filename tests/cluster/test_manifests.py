"""Static checks of the cluster manifests: they parse, carry the fields KubeRay / the Ray cluster launcher
require, use token authentication everywhere, keep the dashboard internal, and hold no secrets."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
KUBERAY = CLUSTER / "kuberay"
YAML_FILES = sorted(CLUSTER.rglob("*.yaml")) + sorted(CLUSTER.rglob("*.yml"))
ALL_FILES = sorted(p for p in CLUSTER.rglob("*") if p.is_file())


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _kind(path: Path, kind: str) -> list[dict[str, Any]]:
    return [d for d in _docs(path) if d.get("kind") == kind]


def _embedded_rayjobs() -> list[dict[str, Any]]:
    """RayJob manifests held in ConfigMaps (what the retraining CronJob creates)."""
    out = []
    for cm in _kind(KUBERAY / "retrain-cronjob.yaml", "ConfigMap"):
        for text in (cm.get("data") or {}).values():
            out += [d for d in yaml.safe_load_all(text) if d and d.get("kind") == "RayJob"]
    return out


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container.get("env") or []}


def _assert_token_auth(container: dict[str, Any], where: str) -> None:
    env = _env(container)
    assert env.get("RAY_AUTH_MODE", {}).get("value") == "token", f"{where}: RAY_AUTH_MODE=token missing"
    tok = env.get("RAY_AUTH_TOKEN")
    assert tok is not None, f"{where}: RAY_AUTH_TOKEN missing"
    assert "value" not in tok, f"{where}: RAY_AUTH_TOKEN must come from a Secret, not a literal"
    ref = tok["valueFrom"]["secretKeyRef"]
    assert ref["name"] and ref["key"], where


def _ray_cluster_specs() -> list[tuple[str, dict[str, Any]]]:
    specs = [(f"RayCluster {d['metadata']['name']}", d["spec"]) for d in _kind(KUBERAY / "raycluster.yaml", "RayCluster")]
    for rj in _kind(KUBERAY / "rayjob.yaml", "RayJob"):
        if "rayClusterSpec" in rj["spec"]:
            specs.append((f"RayJob {rj['metadata']['name']}", rj["spec"]["rayClusterSpec"]))
    return specs


# --------------------------------------------------------------------------------------------------


def test_expected_files_exist() -> None:
    for rel in ("README.md", "local.sh", "aws.yaml", "Dockerfile", "kuberay/raycluster.yaml",
                "kuberay/rayjob.yaml", "kuberay/retrain-cronjob.yaml"):
        assert (CLUSTER / rel).is_file(), rel
    assert (CLUSTER / "local.sh").stat().st_mode & stat.S_IXUSR, "local.sh must be executable"


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(CLUSTER)))
def test_yaml_parses_with_required_fields(path: Path) -> None:
    docs = _docs(path)
    assert docs, f"{path}: empty"
    if path.name == "aws.yaml":
        return  # not a Kubernetes manifest: checked below
    for d in docs:
        assert d.get("apiVersion") and d.get("kind"), f"{path}: apiVersion/kind missing"
        assert d.get("metadata", {}).get("name") or d.get("metadata", {}).get("generateName"), path
    for rj in _embedded_rayjobs() if path.name == "retrain-cronjob.yaml" else []:
        assert rj["apiVersion"] == "ray.io/v1" and rj["metadata"].get("generateName")


def test_ray_clusters_cpu_head_gpu_workers_token_auth() -> None:
    specs = _ray_cluster_specs()
    assert len(specs) >= 2  # the long-running RayCluster and the RayJob's own cluster
    for where, spec in specs:
        head = spec["headGroupSpec"]
        assert isinstance(head["rayStartParams"], dict), where
        assert head["rayStartParams"].get("num-cpus") == "0", f"{where}: head should not run tasks"
        assert head.get("serviceType", "ClusterIP") == "ClusterIP", f"{where}: dashboard must stay internal"
        assert all(isinstance(v, str) for v in head["rayStartParams"].values()), f"{where}: rayStartParams are strings"
        head_c = head["template"]["spec"]["containers"][0]
        assert "nvidia.com/gpu" not in (head_c.get("resources", {}).get("limits") or {}), f"{where}: CPU head"
        _assert_token_auth(head_c, f"{where} head")
        groups = spec["workerGroupSpecs"]
        assert groups, where
        gpu_groups = 0
        for g in groups:
            assert g["groupName"] and isinstance(g["rayStartParams"], dict), where
            assert g["minReplicas"] <= g.get("replicas", g["minReplicas"]) <= g["maxReplicas"], where
            c = g["template"]["spec"]["containers"][0]
            _assert_token_auth(c, f"{where} worker group {g['groupName']}")
            limits = c.get("resources", {}).get("limits") or {}
            if int(limits.get("nvidia.com/gpu", 0)) >= 1:
                gpu_groups += 1
        assert gpu_groups >= 1, f"{where}: no GPU worker group (resources.limits nvidia.com/gpu)"
    rc = _kind(KUBERAY / "raycluster.yaml", "RayCluster")[0]
    assert rc["apiVersion"] == "ray.io/v1" and rc["spec"].get("enableInTreeAutoscaling") is True
    assert rc["spec"]["workerGroupSpecs"][0]["maxReplicas"] > rc["spec"]["workerGroupSpecs"][0]["minReplicas"]


def test_no_service_exposes_the_dashboard() -> None:
    for path in (KUBERAY / "raycluster.yaml", KUBERAY / "rayjob.yaml", KUBERAY / "retrain-cronjob.yaml"):
        for d in _docs(path):
            if d["kind"] == "Service":
                assert d["spec"].get("type", "ClusterIP") == "ClusterIP", path
            assert d["kind"] != "Ingress", path
        text = path.read_text()
        assert "LoadBalancer" not in text and "NodePort" not in text, path


def test_rayjobs_run_the_mdvad_job_with_token_submitters() -> None:
    jobs = _kind(KUBERAY / "rayjob.yaml", "RayJob") + _embedded_rayjobs()
    assert len(jobs) == 2
    for rj in jobs:
        assert rj["apiVersion"] == "ray.io/v1"
        spec = rj["spec"]
        assert re.match(r"^python3? (\S*/)?jobs/mdvad\.py\b", spec["entrypoint"]), spec["entrypoint"]
        assert "s3://" in spec["entrypoint"] and "--gpu" in spec["entrypoint"]
        assert ("rayClusterSpec" in spec) != ("clusterSelector" in spec)
        runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
        assert runtime_env["working_dir"]
        sub = spec["submitterPodTemplate"]["spec"]["containers"][0]
        _assert_token_auth(sub, f"RayJob {rj['metadata'].get('name') or rj['metadata']['generateName']} submitter")
    assert jobs[0]["spec"]["shutdownAfterJobFinishes"] is True


_CRON_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def _valid_cron(expr: str) -> bool:
    if expr.startswith("@"):
        return expr in {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
    fields = expr.split()
    if len(fields) != 5:
        return False
    for field, (lo, hi) in zip(fields, _CRON_RANGES):
        for part in field.split(","):
            m = re.fullmatch(r"(\*|\d+(?:-\d+)?)(?:/(\d+))?", part)
            if not m:
                return False
            if m.group(1) != "*":
                nums = [int(x) for x in m.group(1).split("-")]
                if not all(lo <= n <= hi for n in nums) or nums != sorted(nums):
                    return False
            if m.group(2) is not None and int(m.group(2)) == 0:
                return False
    return True


def test_cron_validator() -> None:
    assert _valid_cron("0 3 * * 0") and _valid_cron("*/15 1-5 * * 1,3") and _valid_cron("@weekly")
    assert not _valid_cron("0 3 * *") and not _valid_cron("61 3 * * 0") and not _valid_cron("0 25 * * *")


def test_retrain_cronjob_creates_a_rayjob() -> None:
    path = KUBERAY / "retrain-cronjob.yaml"
    (cron,) = _kind(path, "CronJob")
    assert cron["apiVersion"] == "batch/v1"
    assert _valid_cron(cron["spec"]["schedule"]), cron["spec"]["schedule"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    cmd = pod["containers"][0].get("command", []) + pod["containers"][0].get("args", [])
    assert "kubectl" in cmd[0] and "create" in cmd
    mounted = {v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v}
    assert mounted == {cm["metadata"]["name"] for cm in _kind(path, "ConfigMap")}
    sa = pod["serviceAccountName"]
    roles = {r["metadata"]["name"]: r for r in _kind(path, "Role")}
    (binding,) = _kind(path, "RoleBinding")
    assert binding["subjects"][0]["name"] == sa and binding["roleRef"]["name"] in roles
    rules = roles[binding["roleRef"]["name"]]["rules"]
    assert any("ray.io" in r["apiGroups"] and "rayjobs" in r["resources"] and "create" in r["verbs"] for r in rules)
    (rj,) = _embedded_rayjobs()
    assert rj["spec"]["clusterSelector"]["ray.io/cluster"] == _kind(KUBERAY / "raycluster.yaml", "RayCluster")[0]["metadata"]["name"]


def test_cluster_launcher_config() -> None:
    (cfg,) = _docs(CLUSTER / "aws.yaml")
    for key in ("cluster_name", "provider", "available_node_types", "head_node_type", "max_workers"):
        assert key in cfg, key
    assert cfg["provider"]["type"] == "aws"
    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types
    assert types[cfg["head_node_type"]]["resources"].get("CPU") == 0
    gpu_types = [n for n, t in types.items() if n != cfg["head_node_type"]
                 and re.match(r"^(g\d|p\d)", t["node_config"]["InstanceType"])]
    assert gpu_types, "no GPU worker node type"
    for n in gpu_types:
        assert types[n]["min_workers"] < types[n]["max_workers"] <= cfg["max_workers"]
    head_cmds = " ".join(cfg["head_start_ray_commands"])
    worker_cmds = " ".join(cfg["worker_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in head_cmds and "RAY_AUTH_MODE=token" in worker_cmds
    assert "--dashboard-host=127.0.0.1" in head_cmds
    assert any("auth_token" in k for k in cfg.get("file_mounts", {}))


# Patterns of credentials that must never be committed (AWS keys, private keys, literal tokens).
_SECRET_PATTERNS = [
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"aws_secret_access_key\s*[:=]\s*\S+", re.I),
    re.compile(r"AWS_SECRET_ACCESS_KEY\s*[:=]\s*['\"]?[A-Za-z0-9/+=]{40}"),
    re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"),  # shape of an AWS secret key
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"RAY_AUTH_TOKEN=['\"]?[0-9a-f]{32,}"),
]


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: str(p.relative_to(CLUSTER)))
def test_no_secrets_in_files(path: Path) -> None:
    text = path.read_text(errors="replace")
    for pat in _SECRET_PATTERNS:
        m = pat.search(text)
        assert m is None, f"{path}: looks like a secret: {m.group(0)[:12]}..."
    if path.suffix in (".yaml", ".yml"):
        for d in _docs(path):
            assert d.get("kind") != "Secret" or not (d.get("data") or d.get("stringData")), f"{path}: Secret with data"
            for c in _all_containers(d):
                for e in c.get("env") or []:
                    if re.search(r"SECRET|TOKEN|PASSWORD|ACCESS_KEY", e["name"]):
                        assert "value" not in e, f"{path}: {e['name']} given as a literal"


def _all_containers(obj: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("containers", "initContainers") and isinstance(v, list):
                found += [c for c in v if isinstance(c, dict)]
            found += _all_containers(v)
    elif isinstance(obj, list):
        for v in obj:
            found += _all_containers(v)
    return found
