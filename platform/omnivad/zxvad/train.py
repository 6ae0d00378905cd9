"""zxVAD training (spec §6): the three networks, one iteration in the paper's order (G, then D, then
N), a local loop for tests and the per-worker loop Ray Train runs (DDP, checkpoints, resume).

Every random draw of a step (clips, donors, pastes, augmentation) is a pure function of
(seed, rank, step), so a run resumed from a checkpoint replays the same iterations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from omnivad.config import ZxVADConfig
from omnivad.engine import harness
from omnivad.engine.harness import build_optimizer, prepare
from omnivad.zxvad import loss as L
from omnivad.zxvad.data import Batch, ClipSampler
from omnivad.zxvad.model import ArcFace, Generator, PatchDiscriminator, attention
from omnivad.zxvad.pseudo import PseudoAnomaly

_LOGGER = logging.getLogger("omnivad.zxvad")


def attention_grid(size: int, n_layers: int = 4) -> int:
    """Side of N's last hidden map: k4/p2 convs, stride 2 then one stride 1 (256 -> 34)."""
    for _ in range(n_layers - 1):
        size = size // 2 + 1
    return size + 1


class NormalcyClassifier(nn.Module):
    """N (§4.4) with its ArcFace class centres, so one optimizer (and one DDP wrapper) holds both."""

    def __init__(self, zc: ZxVADConfig) -> None:
        super().__init__()
        self.net = PatchDiscriminator(3, zc.disc_channels, sigmoid=False)
        h, w = (attention_grid(s, len(zc.disc_channels)) for s in zc.frame_size)
        self.arcface = ArcFace(h * w, 2, zc.arc_scale, zc.arc_margin_deg)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """-> (patch scores (B, 1, h+1, w+1), attention A(x) (B, h, w), L_RAA or None)."""
        s, f = self.net(x)
        a = attention(f)
        return s, a, (self.arcface(a.flatten(1), labels) if labels is not None else None)


def build_generator(zc: ZxVADConfig) -> Generator:
    return Generator(zc.clip_len, 3, zc.base_channels, zc.memory_items, zc.shrink_lambda, zc.memory_sim, zc.use_memory)


class ZxVAD:
    """G, D, N (+ ArcFace centres), the frozen O, and their three Adam optimizers (§6.2)."""

    def __init__(self, zc: ZxVADConfig, device: torch.device | str = "cpu") -> None:
        self.zc, self.device = zc, torch.device(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(zc.seed)
            self.g = build_generator(zc).to(self.device)
            self.d = PatchDiscriminator(3, zc.disc_channels, sigmoid=True).to(self.device) if zc.use_gan else None
            self.n = NormalcyClassifier(zc).to(self.device) if zc.use_nc else None
        self.o = PseudoAnomaly(zc.r_arch, zc.r_layer, zc.mask_threshold, zc.attn_norm, zc.mix, zc.seed).to(self.device) if zc.use_nc else None
        betas = (0.5, 0.999)
        self.opt_g = build_optimizer(self.g.parameters(), "adam", zc.lr_g, betas=betas)
        self.opt_d = build_optimizer(self.d.parameters(), "adam", zc.lr_d, betas=betas) if self.d else None
        self.opt_n = build_optimizer(self.n.parameters(), "adam", zc.lr_n, betas=betas) if self.n else None
        # what the G, D and N steps call: the DDP-wrapped networks when distributed (set by ``prepare_distributed``)
        self.d_train, self.n_train, self.g_train = self.d, self.n, self.g

    def prepare_distributed(self) -> None:
        """Wrap G, D and N for distributed training (``ray.train.torch.prepare_model``: DDP with several
        workers); the unwrapped networks stay in ``g``/``d``/``n`` for checkpoints and the G step's D and N."""
        self.g_train = prepare(self.g, find_unused_parameters=False)
        if self.d is not None:
            self.d_train = prepare(self.d, find_unused_parameters=False)
        if self.n is not None:
            self.n_train = prepare(self.n, find_unused_parameters=False)

    def step(self, batch: Batch, gen: torch.Generator) -> dict[str, float]:
        """One iteration (§6.3): O, then the G step, the D step and the N step, each on its own loss."""
        zc, dev = self.zc, self.device
        clips = batch.clips.to(dev)
        b = clips.shape[0]
        x, y = clips[:, : zc.clip_len].flatten(1, 2), clips[:, zc.clip_len]
        logs: dict[str, float] = {}

        # 1-3. G step: L_G = L_REC + a_MEM L_MEM + a_D adv(D) + a_N adv(N); D and N are not stepped
        v_hat, att = self.g_train(x)
        parts = L.reconstruction_loss(v_hat, y)
        loss_g = parts["mse"] + parts["ssm"] + parts["gd"]
        if att is not None:
            parts["mem"] = L.memory_entropy(att)
            loss_g = loss_g + zc.w_mem * parts["mem"]
        if self.d is not None:
            parts["adv_d"] = L.lsgan_real(self.d(v_hat)[0])
            loss_g = loss_g + zc.w_adv_d * parts["adv_d"]
        if self.n is not None:
            parts["adv_n"] = L.lsgan_real(self.n(v_hat)[0])
            loss_g = loss_g + zc.w_adv_n * parts["adv_n"]
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        logs.update({k: float(v.detach()) for k, v in parts.items()}, loss_g=float(loss_g.detach()))
        v_hat = v_hat.detach()

        # 4. D step (LSGAN): fake = this iteration's prediction, real = the true next frame
        if self.d is not None:
            s = self.d_train(torch.cat([v_hat, y]))[0]
            loss_d = L.lsgan_fake(s[:b]) + L.lsgan_real(s[b:])
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            logs["loss_d"] = float(loss_d.detach())

        # 5. N step on predicted normals v^, their augmentations g(v^) and pseudo-anomalies v~
        if self.n is not None:
            base = v_hat if zc.paste_base == "prediction" else batch.base.to(dev)
            v_tilde, m_tilde = self.o(base, batch.donors.to(dev), gen)
            aug = L.augment(v_hat, gen, zc.augment)
            labels = torch.tensor([1] * (2 * b) + [0] * b, device=dev)
            s, a, raa = self.n_train(torch.cat([v_hat, aug, v_tilde]), labels)
            s_p, s_t, a_p, a_t = s[:b], s[2 * b :], a[:b], a[2 * b :]
            nparts = {
                "n": L.normalcy_loss(s_p, s_t),
                "rn": L.relative_normalcy_loss(s_p, s_t),
                "aa": L.attention_affirmation_loss(a_p, a_t, m_tilde),
                "raa": raa,
            }
            loss_n = zc.w_n * nparts["n"] + zc.w_rn * nparts["rn"] + zc.w_aa * nparts["aa"] + zc.w_raa * nparts["raa"]
            self.opt_n.zero_grad(set_to_none=True)
            loss_n.backward()
            self.opt_n.step()
            logs.update({f"nc_{k}": float(v.detach()) for k, v in nparts.items()}, loss_n=float(loss_n.detach()),
                        mask_cover=float(m_tilde.mean()), gap=float((s_p.mean() - s_t.mean()).detach()))
        return logs

    # --- checkpoints -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"g": self.g.state_dict(), "opt_g": self.opt_g.state_dict()}
        if self.d is not None:
            state.update(d=self.d.state_dict(), opt_d=self.opt_d.state_dict())
        if self.n is not None:
            state.update(n=self.n.state_dict(), opt_n=self.opt_n.state_dict())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.g.load_state_dict(state["g"])
        self.opt_g.load_state_dict(state["opt_g"])
        if self.d is not None:
            self.d.load_state_dict(state["d"])
            self.opt_d.load_state_dict(state["opt_d"])
        if self.n is not None:
            self.n.load_state_dict(state["n"])
            self.opt_n.load_state_dict(state["opt_n"])


def step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, rank, step, 7]).generate_state(1)[0]))


def train_local(
    zc: ZxVADConfig,
    videos: Sequence[np.ndarray],
    donors: Sequence[np.ndarray] | None = None,
    iterations: int | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> ZxVAD:
    """The same iterations without Ray (tests, notebooks): uint8 (N, H, W, C) source videos in memory."""
    model = ZxVAD(zc)
    sampler = ClipSampler(videos, donors, zc.clip_len, zc.batch_size, zc.seed)
    for step in range(iterations or zc.iterations):
        logs = model.step(sampler.batch(step), step_generator(zc.seed, 0, step))
        if on_step is not None:
            on_step(step + 1, logs)
    return model


def shard(uris: list[str], rank: int, world: int) -> list[str]:
    """This worker's videos (every worker gets at least one)."""
    return uris[rank::world] or uris[rank % len(uris) :: len(uris)]


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train worker: decode this worker's shard of the source (and donor) videos, run the
    iterations from the latest checkpoint, report and checkpoint every ``checkpoint_every`` steps."""
    from omnivad.zxvad.data import load_frames

    zc = ZxVADConfig.model_validate(config["zxvad"])
    info = harness.worker(bool(config.get("use_gpu")))
    rank, world = info.rank, info.world
    videos = load_frames(shard(config["source"], rank, world), zc.frame_size, zc.gray, zc.max_frames, zc.clip_len + 1)
    donors = (load_frames(shard(config["donors"], rank, world), zc.frame_size, zc.gray, zc.max_frames, 1)
              if config["donors"] else None)
    model = ZxVAD(zc, info.device)
    start, history = 0, []
    state = harness.restore()
    if state is not None:
        model.load_state_dict(state["model"])
        start, history = int(state["step"]), list(state["history"])
        if rank == 0:
            _LOGGER.info(f"[zxvad] resumed at step {start}")
    model.prepare_distributed()
    sampler = ClipSampler(videos, donors, zc.clip_len, zc.batch_size, zc.seed, rank)
    hooks = harness.step_hooks(config)
    if rank == 0:
        _LOGGER.info(f"[zxvad] {sum(v.shape[0] for v in videos)} source frames in {len(videos)} videos on rank 0")
    for step in range(start, zc.iterations):
        logs = model.step(sampler.batch(step), step_generator(zc.seed, rank, step))
        done = step + 1
        harness.run_hooks(hooks, done)
        save = done % zc.checkpoint_every == 0 or done == zc.iterations
        if not save and done % zc.log_every:
            continue
        metrics = {"step": done, **logs}
        if rank == 0:
            history.append(metrics)
            _LOGGER.info(f"[zxvad] step {done}/{zc.iterations} " + " ".join(f"{k}={v:.4g}" for k, v in logs.items()))
        if save:
            state = {"model": model.state_dict(), "step": done, "history": history, "zxvad": config["zxvad"]}
            harness.report(metrics, state if rank == 0 else None, f"step-{done:08d}")
