"""Ray and corpus set-up shared by every job: start or join Ray (the embedded local Ray on loopback with
token authentication), open the corpus (making the demo corpus only at its default location) and pick
the domains a run uses."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from omnivad.config import Config
from omnivad.corpus.format import Corpus
from omnivad.errors import ConfigError, CorpusError


def package_runtime_env() -> dict[str, Any] | None:
    """``{"py_modules": [<omnivad>]}`` when omnivad is not installed where Ray workers run.

    jobs/mdvad.py sets ``OMNIVAD_SHIP_PACKAGE=1`` when it had to import omnivad from the checkout
    (e.g. ``ray job submit --working-dir .`` to a cluster whose image lacks the package); the workers
    then get the driver's copy of the package. Not when the submitted job already sets ``py_modules``.
    """
    import os

    if os.environ.get("OMNIVAD_SHIP_PACKAGE", "") not in ("1", "true", "yes"):
        return None
    job_env = json.loads(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR") or "{}").get("runtime_env") or {}
    if "py_modules" in job_env:
        return None
    import omnivad

    return {"py_modules": [os.path.dirname(os.path.abspath(omnivad.__file__))]}


def ensure_ray(cfg: Config) -> None:
    import os

    import ray

    from omnivad.data.ray_datasets import quiet_progress
    from omnivad.logs import logger, quiet_ray

    quiet_progress()
    if ray.is_initialized():
        return
    runtime_env = package_runtime_env()
    if cfg.ray.address or os.environ.get("RAY_ADDRESS"):
        ray.init(address=cfg.ray.address or os.environ["RAY_ADDRESS"], log_to_driver=True, runtime_env=runtime_env)
    else:
        token = loopback_ray_env()
        ray.init(num_cpus=cfg.ray.num_cpus, include_dashboard=False, log_to_driver=True, runtime_env=runtime_env,
                 _node_ip_address="127.0.0.1")
        quiet_ray()
        if token:
            logger().info(f"[omnivad] local Ray on 127.0.0.1 only, token authentication (token file {token})")


#: Where the embedded local Ray's token lives (0600, in a 0700 directory); ``OMNIVAD_HOME`` moves it.
def ray_token_path() -> str:
    from omnivad.config import DEFAULT_HOME

    return os.path.join(DEFAULT_HOME, "ray", "auth_token")


def loopback_ray_env() -> str | None:
    """Network defaults of the embedded local Ray (``ray.init()`` without an address), set before it starts.

    * Every Ray service binds to 127.0.0.1: Ray binds its gRPC servers (GCS, raylet, workers, object manager,
      agents, metrics export) to all interfaces unless the node IP is loopback, and on Linux it rewrites a
      ``127.0.0.1`` node IP to the machine's address unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (Ray's
      single-machine mode). Both are set here, for this process and the Ray processes it starts.
    * Token authentication (``RAY_AUTH_MODE=token``) with a token omnivad makes once under
      ``OMNIVAD_HOME/ray/auth_token`` (mode 0600). An explicit ``RAY_AUTH_MODE`` in the environment is respected.

    Returns the token file when omnivad set token authentication up, else None.
    """
    import secrets

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray._private.ray_constants as ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False  # read at import time; ray may be imported already
    if os.environ.get("RAY_AUTH_MODE") is not None:
        return None
    path = ray_token_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    os.chmod(os.path.dirname(path), 0o700)
    if not os.path.isfile(path) or os.path.getsize(path) < 32:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    os.chmod(path, 0o600)
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN_PATH"] = path
    os.environ.pop("RAY_AUTH_TOKEN", None)
    try:  # Ray caches its config and token at import; refresh both (what Ray's own token setup does)
        from ray._raylet import AuthenticationTokenLoader, Config as RayConfig

        RayConfig.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
    except ImportError:  # pragma: no cover - a Ray without token authentication
        pass
    return path


def selected_domains(cfg: Config, corpus: Corpus) -> list[str]:
    """``corpus.domains`` (default: every domain of the corpus that is not an auxiliary set merged into
    another one by ``benchmark.merge``), each checked against the corpus."""
    merged = {a for auxes in cfg.benchmark.merge.values() for a in auxes}
    domains = cfg.corpus.domains or [d for d in corpus.domains if d not in merged]
    for d in domains:
        if d not in corpus.domains:
            raise ConfigError(f"corpus.domains: {d!r} is not in {corpus.uri} ({', '.join(corpus.domains)})")
    return list(domains)


def ensure_corpus(cfg: Config) -> Corpus:
    """The corpus of ``corpus.uri``. The synthetic demo corpus is made only at its default location
    (``OMNIVAD_HOME/demo-corpus``, what a job uses when given no corpus) with ``corpus.synth_if_missing``; an
    explicit ``--corpus``/``corpus.uri`` that holds no corpus is an error naming it, never a synthetic corpus."""
    check_corpus_uri(cfg)
    if not Corpus.exists(cfg.corpus.uri):
        from omnivad.corpus.synth import ensure_demo_corpus

        ensure_demo_corpus(cfg.corpus.uri)
    return Corpus.open(cfg.corpus.uri, verify=cfg.corpus.verify)


def is_demo_uri(uri: str) -> bool:
    from omnivad.config import CorpusConfig

    default = CorpusConfig.model_fields["uri"].default
    return not uri.startswith("s3://") and os.path.abspath(os.path.expanduser(uri)) == os.path.abspath(default)


def check_corpus_uri(cfg: Config) -> None:
    """Fail (naming the URI) unless ``corpus.uri`` holds a corpus or is the demo corpus's default location."""
    uri = cfg.corpus.uri
    if Corpus.exists(uri):
        return
    if is_demo_uri(uri) and cfg.corpus.synth_if_missing:
        return
    hint = (" (corpus.synth_if_missing=false: the demo corpus is not made)" if is_demo_uri(uri) else
            "; check the path, import a corpus there (omnivad corpus import) or make one (omnivad corpus synth)")
    raise CorpusError(f"corpus.uri: no corpus at {uri} (no manifest.json){hint}")

