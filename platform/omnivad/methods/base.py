"""What a method contributes to the platform: a model, its losses, its scoring rule, and every hook a platform
part may call.

The engine, the data pipeline, the protocols, the search and the registry only talk to :class:`Method`; nothing
outside ``methods/`` names a specific method. :class:`MethodBase` gives every hook its default, so a method
implements ``build``, ``loss`` and ``score`` and overrides only the hooks that differ (see ``methods/README.md``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import torch
from torch import nn

from omnivad.data.batch import Batch
from omnivad.errors import ConfigError

if TYPE_CHECKING:
    from omnivad.config import Config
    from omnivad.tune.config import SearchParam

__all__ = ["Batch", "Method", "MethodBase", "ScoreModule", "scoring", "split_entry", "unwrap_as"]


class Method(Protocol):
    """A registered method. Implementations are stateless; state lives in the model."""

    name: str
    section: str | None  # the config section the method owns (``cfg.<section>``)
    trunked: bool  # MDVAD heads (and their AC) on a registered trunk; kept for protocols/runner.py
    #: whether a training step may leave parameters without a gradient (optional branches off): DDP then needs
    #: ``find_unused_parameters=True``, which costs a graph traversal every step; False lets DDP skip it
    find_unused_parameters: bool

    def build(self, cfg: Config, domains: list[str], feature_dim: int) -> nn.Module:
        """A fresh model with one head per domain where the method has per-domain heads."""
        ...

    def loss(self, model: nn.Module, batch: Batch, cfg: Config, adapting: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss and named scalar terms to log. ``adapting`` is True during E3/E4 fine-tuning."""
        ...

    def score(self, model: nn.Module, x: torch.Tensor, target: str | None) -> torch.Tensor:
        """Snippet scores (T,) of one video ``x`` (K, T, C), crops averaged, model in eval mode.

        ``target`` is the test domain; when the model has no head for it (or it is None) the method's
        unseen-domain rule applies.
        """
        ...

    def tag(self, cfg: Config) -> str:
        """The run's method label: ``nullang-mil+ac``, ``nullang-mil@bn-wvad+ac``, ``bn-wvad``."""
        ...

    def has_ac(self, cfg: Config) -> bool:
        """Whether the method has an Abnormal-Conflict classifier at all."""
        ...

    def entry_overrides(self, entry: str) -> dict[str, Any]:
        """One ``--methods`` entry ``METHOD[@TRUNK][+ac|+noac]`` naming this method → config overrides."""
        ...

    def run_fields(self, cfg: Config) -> dict[str, Any]:
        """What ``results.json`` records about the method (``method``, ``trunk``, ``ac``, ...)."""
        ...

    def default_search_space(self) -> list[SearchParam]:
        """The parameters ``tune`` searches when ``tune.space`` is not given."""
        ...

    def prepare_target(self, model: nn.Module, target: str, cfg: Config, x: torch.Tensor | None = None,
                       mask: torch.Tensor | None = None) -> bool:
        """Before fine-tuning on ``target`` (E3/E4, retrain): adapt the model (e.g. add a head); True when the
        parameters changed (rebuild the optimiser)."""
        ...

    def head_domains(self, model: nn.Module) -> list[str] | None:
        """The domains the model has heads for, in head order; None when it has no per-domain heads."""
        ...

    def most_similar_head(self, model: nn.Module, x: torch.Tensor | list[torch.Tensor],
                          mask: torch.Tensor | None = None) -> str | None:
        """The existing head that scores videos ``x`` most abnormal on average (A14), None for no such head."""
        ...

    def training_step(self, model: nn.Module, batch: Batch, optimizers: Any, cfg: Config,
                      adapting: bool = False) -> dict[str, float] | None:
        """One whole optimisation step (methods with several optimisers, the way anomalib's GANomaly optimises
        manually): zero, backward and step itself and return the logs; None: the shared loop does
        loss → backward → step."""
        ...

    def aux_scores(self, model: nn.Module, x: torch.Tensor, target: str | None) -> dict[str, Any]:
        """Extra per-snippet outputs (T,) of one video stored next to its scores (``{"ac": ...}`` for the
        Abnormal-Conflict classifier); {} when the method has none."""
        ...

    def score_range(self) -> tuple[float, float, str]:
        """(low, high, meaning) of the values :meth:`score` returns."""
        ...

    def scoring_module(self, model: nn.Module, target: str | None) -> nn.Module:
        """One module holding the network and its scoring rule for ``target``: (K, T, C) → (T,), equal to
        :meth:`score` (what ``omnivad export`` writes)."""
        ...


class MethodBase:
    """Defaults of every :class:`Method` hook: one model for every domain, no AC, no trunk, no head surgery."""

    name: str = ""
    section: str | None = None  # the config section the method owns (registered by its package)
    trunked: bool = False
    find_unused_parameters: bool = False

    def build(self, cfg: Config, domains: list[str], feature_dim: int) -> nn.Module:
        raise NotImplementedError

    def optimizer_params(self, model: nn.Module, cfg: Config) -> Any:
        """What the shared loop's optimiser is built over: ``model.parameters()``, or parameter groups (dicts
        with their own ``lr``) for a method that trains parts of the model at different rates."""
        return model.parameters()

    def loss(self, model: nn.Module, batch: Batch, cfg: Config, adapting: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def score(self, model: nn.Module, x: torch.Tensor, target: str | None) -> torch.Tensor:
        raise NotImplementedError

    def tag(self, cfg: Config) -> str:
        return self.name

    def has_ac(self, cfg: Config) -> bool:
        return False

    def entry_overrides(self, entry: str) -> dict[str, Any]:
        name, trunk, ac = split_entry(entry)
        if trunk:
            raise ConfigError(f"--methods {entry!r}: {name!r} has no trunk to replace (trunks go under mil, null-mil, nullang-mil)")
        if ac is not None:
            raise ConfigError(f"--methods {entry!r}: {name!r} has no Abnormal-Conflict classifier")
        # AC is an MDVAD head option: off, so the run's tag and hash say what ran
        return {"model.method": self.name, "mdvad.ac": False}

    def run_fields(self, cfg: Config) -> dict[str, Any]:
        return {"method": self.name, "trunk": cfg.mdvad.trunk}

    def default_search_space(self) -> list[SearchParam]:
        """The issue's default space, searched for every method unless it says otherwise: τ, λ (log), m and the
        top-K ratio of the MDVAD loss, and lr (log)."""
        from omnivad.tune.config import SearchParam

        return [
            SearchParam(path="mdvad.tau", low=0.1, high=0.6),
            SearchParam(path="mdvad.ac_weight", low=0.1, high=20.0, log=True),
            SearchParam(path="mdvad.angular_margin", low=0.0, high=0.6),
            SearchParam(path="mdvad.topk_ratio", low=1 / 32, high=1 / 4),
            SearchParam(path="train.lr", low=1e-5, high=1e-3, log=True),
        ]

    def prepare_target(self, model: nn.Module, target: str, cfg: Config, x: torch.Tensor | None = None,
                       mask: torch.Tensor | None = None) -> bool:
        return False

    def head_domains(self, model: nn.Module) -> list[str] | None:
        model = _inner(model)
        domains = getattr(model, "domains", None)
        return list(domains) if domains is not None else None

    def most_similar_head(self, model: nn.Module, x: torch.Tensor | list[torch.Tensor],
                          mask: torch.Tensor | None = None) -> str | None:
        return None

    def training_step(self, model: nn.Module, batch: Batch, optimizers: Any, cfg: Config,
                      adapting: bool = False) -> dict[str, float] | None:
        return None

    def aux_scores(self, model: nn.Module, x: torch.Tensor, target: str | None) -> dict[str, Any]:
        return {}

    def score_range(self) -> tuple[float, float, str]:
        return (0.0, 1.0, "abnormality probability of each snippet")

    def scoring_module(self, model: nn.Module, target: str | None) -> nn.Module:
        return ScoreModule(self, model, target)


class ScoreModule(nn.Module):
    """The default :meth:`Method.scoring_module`: ``method.score(model, x, target)`` as a module (traceable
    when the method's scoring is plain tensor code)."""

    def __init__(self, method: Any, model: nn.Module, target: str | None) -> None:
        super().__init__()
        self.model = model
        self._method = method
        self._target = target

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._method.score(self.model, x, self._target)


def split_entry(entry: str) -> tuple[str, str, bool | None]:
    """``METHOD[@TRUNK][+ac|+noac]`` → (method, trunk or "", ac or None)."""
    text = entry.strip()
    ac: bool | None = None
    for suffix, value in (("+noac", False), ("+ac", True)):
        if text.endswith(suffix):
            text, ac = text[: -len(suffix)], value
            break
    name, _, trunk = text.partition("@")
    return name, trunk, ac


def _inner(model: nn.Module) -> nn.Module:
    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    return model


M = TypeVar("M", bound=nn.Module)


def unwrap_as(model: nn.Module, cls: type[M], method: str) -> M:
    """The ``cls`` network inside DistributedDataParallel-style wrappers (``.module``), or the model itself;
    a ValueError naming ``method`` when it is something else."""
    while not isinstance(model, cls) and hasattr(model, "module"):
        model = model.module
    if not isinstance(model, cls):
        raise ValueError(f"method {method!r} expects a {cls.__name__}, got {type(model).__name__}")
    return model


@contextmanager
def scoring(model: nn.Module, x: torch.Tensor) -> Iterator[torch.Tensor]:
    """Score one video the way every method does: ``x`` (K,T,C), or (T,C) as one crop, checked and moved to
    the model's device and dtype; the model in eval mode without gradients, its mode restored afterwards."""
    if x.dim() == 2:
        x = x.unsqueeze(0)
    if x.dim() != 3:
        raise ValueError(f"expected x of shape (K, T, C) or (T, C), got {tuple(x.shape)}")
    param = next(model.parameters())
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield x.to(device=param.device, dtype=param.dtype)
    finally:
        model.train(was_training)
