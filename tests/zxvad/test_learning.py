"""zxVAD learns on a synthetic source -> target pair (no Ray): trained on one scene's normal videos only,
it detects anomalies of a kind it never saw in another scene, and its Normalcy Classifier separates
predicted frames from pseudo-anomalies on held-out source clips (spec §12.4)."""

from __future__ import annotations

import os

import pytest
import torch
from sklearn.metrics import roc_auc_score

from omnivad.config import ZxVADConfig
from omnivad.video.synth import moving_shapes
from omnivad.zxvad.data import ClipSampler, frame_labels, to_tensor
from omnivad.zxvad.score import frame_auc, video_psnr
from omnivad.zxvad.train import step_generator, train_local

pytestmark = pytest.mark.learning
SEED = int(os.environ.get("OMNIVAD_TEST_SEED", "0"))  # offset of every seed below (tests/margins.py sweeps it)
S = 32
CFG = dict(frame_size=(S, S), base_channels=8, memory_items=50, disc_channels=(16, 32, 32, 32), r_layer="layer2",
           batch_size=8, lr_n=1e-3, lr_d=2e-4, seed=SEED)


@pytest.fixture(scope="module")
def trained():
    source = [moving_shapes(30, (S, S), seed=1000 * SEED + i, scene=0) for i in range(4)]
    return train_local(ZxVADConfig(**CFG), source, iterations=100)


def test_detects_unseen_anomalies_in_an_unseen_scene(trained, claim):
    psnrs, labels = [], []
    for i in range(4):  # target: another background, "fast" anomalies never shown in training
        an = [(10, 22, "fast")] if i < 3 else []
        f = moving_shapes(30, (S, S), seed=1000 * SEED + 100 + i, scene=1, anomalies=an)
        psnrs.append(video_psnr(trained.g, to_tensor(f), 4))
        labels.append(frame_labels(30, [(a, b) for a, b, _ in an]))
    auc = frame_auc(psnrs, labels, drop_first=4)["auc"]
    claim("target frame AUC", auc, ">", 0.75)  # seeds 0-4: 0.85-0.91 (tests/README.md)


def test_normalcy_classifier_separates_pseudo_anomalies_on_held_out_clips(trained, claim):
    """The claim is the ranking (AUC): N scores G's predictions above pseudo-anomalies. The mean score gap it used
    to require (> 0.2) is not a property of the claim: at the same seed it was 0.13 on one CPU model and 0.45 on
    another, and over seeds 0-4 it ranged 0.01-0.70 while the AUC was 1.000 for every one (tests/README.md)."""
    held_out = [moving_shapes(30, (S, S), seed=1000 * SEED + 50 + i, scene=0) for i in range(3)]
    batch = ClipSampler(held_out, None, 4, 16, seed=9 + SEED).batch(0)
    with torch.no_grad():
        trained.g.eval()
        v_hat, _ = trained.g(batch.clips[:, :4].flatten(1, 2))
        v_tilde, _ = trained.o(batch.base, batch.donors, step_generator(9 + SEED, 0, 0))
        s_p = trained.n(v_hat)[0].flatten(1).mean(1)
        s_t = trained.n(v_tilde)[0].flatten(1).mean(1)
    auc = roc_auc_score([1] * 16 + [0] * 16, torch.cat([s_p, s_t]).numpy())
    claim("N AUC predictions vs pseudo-anomalies", auc, ">", 0.85)
