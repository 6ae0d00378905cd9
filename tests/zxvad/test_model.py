"""zxVAD networks: the spec's worked parameter count, shapes, memory addressing, ArcFace, gradient audit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from omnivad.config import ZxVADConfig
from omnivad.zxvad.model import ArcFace, Generator, Memory, PatchDiscriminator, attention, count_parameters
from omnivad.zxvad.pseudo import RandomResNet
from omnivad.zxvad.train import ZxVAD, attention_grid, NormalcyClassifier

TINY = dict(frame_size=(32, 32), base_channels=8, memory_items=16, disc_channels=(8, 16, 16, 16), r_layer="layer2",
            batch_size=2, lr_n=1e-3)


def test_full_size_generator_matches_the_spec_worked_figure():
    with torch.device("meta"):  # no memory, no compute
        g = Generator()
    assert count_parameters(g) == 8_731_011  # U-Net 7,707,011 + memory 2000 x 512
    assert count_parameters(g) - g.memory.items.numel() == 7_707_011
    assert round(count_parameters(g) * 4 / 1e6, 2) == 34.92  # float32 storage, MB (Table 3)


def test_full_size_shapes_on_meta_device():
    with torch.device("meta"):
        g, d, r = Generator(), PatchDiscriminator(), RandomResNet("resnet50")
        bottleneck = {}
        g.down3.register_forward_hook(lambda m, i, o: bottleneck.update(z=o.shape))
        y, att = g(torch.empty(1, 12, 256, 256))
        s, f = d(torch.empty(1, 3, 256, 256))
        feat = r(torch.empty(1, 3, 256, 256))
    assert tuple(y.shape) == (1, 3, 256, 256) and tuple(att.shape) == (32 * 32, 2000)
    assert tuple(bottleneck["z"]) == (1, 512, 32, 32)
    assert tuple(s.shape) == (1, 1, 35, 35) and tuple(f.shape) == (1, 512, 34, 34)
    assert attention_grid(256) == 34
    assert tuple(feat.shape) == (1, 2048, 8, 8)


def test_memory_addressing_shrinkage_and_readout_by_hand():
    mem = Memory(items=3, dim=2, shrink=0.2, sim="cosine")
    with torch.no_grad():
        mem.items.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    z = torch.tensor([3.0, 0.0]).view(1, 2, 1, 1)
    out, w = mem(z)
    soft = torch.softmax(torch.tensor([1.0, 0.0, -1.0]), 0)  # cosine similarities 1, 0, -1
    shr = torch.where(soft > 0.2, soft, torch.zeros(3))  # hard shrinkage keeps w_i > lambda
    shr = shr / shr.sum()
    assert soft[2] < 0.2 < soft[1]
    assert torch.allclose(w[0], shr, atol=1e-6)
    assert torch.allclose(out.view(2), shr @ mem.items.detach(), atol=1e-6)


def test_attention_is_channel_abs_sum_over_its_max():
    f = torch.tensor([[[[1.0, -3.0]], [[2.0, 0.0]]]])  # (1, 2, 1, 2)
    assert torch.allclose(attention(f), torch.tensor([[[1.0, 1.0]]]))
    f = torch.tensor([[[[1.0, -1.0]], [[1.0, 0.0]]]])
    assert torch.allclose(attention(f), torch.tensor([[[1.0, 0.5]]]), atol=1e-6)


def test_arcface_matches_hand_computation():
    arc = ArcFace(2, classes=2, scale=4.0, margin_deg=30.0)
    with torch.no_grad():
        arc.centres.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))  # class 0 along x, class 1 along y
    emb = torch.tensor([[1.0, 1.0]])  # 45 degrees from both centres
    loss = arc(emb, torch.tensor([1]))
    target = 4 * math.cos(math.radians(45 + 30))
    other = 4 * math.cos(math.radians(45))
    expected = -math.log(math.exp(target) / (math.exp(target) + math.exp(other)))
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_gradient_audit_generator_gets_n_gradients_n_step_leaves_g_alone():
    """L_G reaches G through N(v^) (spec §12.5); the N step changes N only, never G."""
    zc = ZxVADConfig(**TINY, use_gan=False)
    model = ZxVAD(zc)
    x = torch.rand(2, 12, 32, 32) * 2 - 1
    v_hat, _ = model.g(x)
    adv = 0.5 * ((model.n(v_hat)[0] - 1) ** 2).mean()
    grads = torch.autograd.grad(adv, list(model.g.parameters()), allow_unused=True)
    assert any(gr is not None and gr.abs().sum() > 0 for gr in grads)

    from omnivad.zxvad.data import ClipSampler

    rng = np.random.default_rng(0)
    videos = [rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8) for _ in range(2)]
    batch = ClipSampler(videos, None, 4, 2, seed=0).batch(0)
    from omnivad.zxvad.train import step_generator

    g_before = {k: v.clone() for k, v in model.g.state_dict().items()}
    n_before = {k: v.clone() for k, v in model.n.state_dict().items()}
    model.opt_g.step = lambda *a, **k: None  # freeze G's own update: only the N step may act now
    logs = model.step(batch, step_generator(0, 0, 0))
    assert all(torch.equal(g_before[k], v) for k, v in model.g.state_dict().items() if "running" not in k and "num_batches" not in k)
    assert any(not torch.equal(n_before[k], v) for k, v in model.n.state_dict().items())
    assert {"mse", "ssm", "gd", "mem", "adv_n", "nc_n", "nc_rn", "nc_aa", "nc_raa"} <= set(logs)


def test_normalcy_classifier_embedding_size_follows_frame_size():
    zc = ZxVADConfig(**TINY)
    n = NormalcyClassifier(zc)
    s, a, raa = n(torch.zeros(3, 3, 32, 32), torch.tensor([1, 1, 0]))
    assert tuple(a.shape) == (3, 6, 6) and tuple(s.shape) == (3, 1, 7, 7) and raa.ndim == 0
    assert n.arcface.centres.shape == (36, 2)  # vec(A) is the ArcFace embedding: 6 x 6 at 32 x 32


@pytest.mark.parametrize("paste_base", ["input", "prediction"])
def test_pseudo_anomalies_are_pasted_into_the_configured_frame(paste_base):
    """``paste_base=input`` (the paper) pastes into one of G's real input frames; ``prediction`` (the
    spec §6.3 alternative) into G's detached prediction of this iteration."""
    from omnivad.zxvad.data import ClipSampler
    from omnivad.zxvad.train import step_generator

    model = ZxVAD(ZxVADConfig(**TINY, use_gan=False, paste_base=paste_base))
    rng = np.random.default_rng(1)
    videos = [rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8) for _ in range(2)]
    batch = ClipSampler(videos, None, 4, 2, seed=0).batch(0)
    seen, predicted = {}, {}
    o_forward, g_forward = model.o.forward, model.g.forward

    def o_spy(base, donor, gen):
        seen["base"] = base.clone()
        return o_forward(base, donor, gen)

    def g_spy(x):
        predicted["v_hat"] = g_forward(x)
        return predicted["v_hat"]

    model.o.forward, model.g.forward = o_spy, g_spy
    model.step(batch, step_generator(0, 0, 0))
    want = predicted["v_hat"][0].detach() if paste_base == "prediction" else batch.base
    assert torch.equal(seen["base"], want)
    assert not seen["base"].requires_grad
