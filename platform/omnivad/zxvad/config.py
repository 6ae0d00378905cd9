"""The ``zxvad`` config section (zero-shot cross-domain zxVAD on raw frames), registered here."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from omnivad.sections import Section, register_section


class ZxVADConfig(Section):
    """Zero-shot cross-domain zxVAD on raw frames (``jobs/zxvad.py``), ../shared/specs/zxvad.md.

    Defaults are the spec's (§11); ``A<n>`` names the spec ambiguity a field resolves."""

    # data (§6.1)
    frame_size: tuple[int, int] = Field(default=(256, 256), description="(H, W) every frame is resized to")
    gray: bool = Field(default=False, description="read frames as grayscale, replicated to 3 channels (Ped1/Ped2)")
    clip_len: int = Field(default=4, ge=1, description="T: input frames of G (plus one target frame)")
    max_frames: int | None = Field(default=None, ge=5, description="decode at most this many frames per video")
    donor_uri: str | None = Field(default=None, description="task-irrelevant donor videos for O (default: the source)")
    # generator (§4.1-4.2)
    base_channels: int = Field(default=64, ge=1, description="U-Net width (64 = the spec's 8,731,011 parameters)")
    memory_items: int = Field(default=2000, ge=1, description="K: memory items")
    shrink_lambda: float = Field(default=0.0005, ge=0, description="lambda: hard-shrinkage threshold")
    memory_sim: Literal["cosine", "dot"] = Field(default="cosine", description="A7: addressing similarity (MemAE code: dot)")
    use_memory: bool = Field(default=True, description="memory module at the bottleneck (Fig. 5b ablation: off)")
    # discriminator / normalcy classifier (§4.3-4.4)
    disc_channels: tuple[int, int, int, int] = Field(default=(128, 256, 512, 512), description="A8: PixelDiscriminator widths")
    use_nc: bool = Field(default=True, description="train the Normalcy Classifier (off: the prediction-only ablation)")
    use_gan: bool = Field(default=True, description="train the discriminator D")
    # pseudo-anomaly synthesis O (§3)
    r_arch: Literal["resnet50", "resnet152"] = Field(default="resnet50", description="A19: untrained CNN R")
    r_layer: Literal["layer2", "layer3", "layer4"] = Field(default="layer4", description="R feature map (layer4: 8x8 at 256x256)")
    attn_norm: Literal["minmax", "max"] = Field(default="minmax", description="A2: normalisation before the threshold")
    mask_threshold: float = Field(default=0.1, ge=0, le=1, description="sigma: object-mask threshold")
    mix: Literal["object", "cutmix", "mixup"] = Field(default="object", description="Fig. 5c: paste strategy of O")
    paste_base: Literal["input", "prediction"] = Field(
        default="input",
        description="frame O pastes into: one of G's real input frames (the paper, §3.4/A4) or G's detached "
        "prediction v^ (§6.3 note: N then cannot tell pseudo-anomalies from predictions by sharpness alone)")
    # loss weights (§5)
    w_mem: float = Field(default=0.0025, ge=0, description="alpha_MEM")
    w_adv_d: float = Field(default=0.05, ge=0, description="alpha_D")
    w_adv_n: float = Field(default=0.5, ge=0, description="alpha_N")
    w_n: float = Field(default=1.0, ge=0, description="alpha_n (L_N)")
    w_rn: float = Field(default=0.01, ge=0, description="alpha_rn (L_RN)")
    w_aa: float = Field(default=1.0, ge=0, description="alpha_aa (L_AA)")
    w_raa: float = Field(default=1.0, ge=0, description="alpha_raa (L_RAA)")
    arc_scale: float = Field(default=64.0, gt=0, description="ArcFace scale s")
    arc_margin_deg: float = Field(default=28.6, ge=0, description="ArcFace margin m (degrees)")
    augment: Literal["reproduction", "kornia-doc"] = Field(default="reproduction", description="A13: parameters of g")
    # optimisation (§6.2)
    batch_size: int = Field(default=8, ge=1)
    iterations: int = Field(default=5000, ge=1)
    lr_g: float = Field(default=2e-4, gt=0)
    lr_d: float = Field(default=2e-5, gt=0)
    lr_n: float = Field(default=2e-5, gt=0)
    seed: int = Field(default=0)
    checkpoint_every: int = Field(default=500, ge=1)
    log_every: int = Field(default=50, ge=1)
    # scoring (§7.1)
    drop_first: int | None = Field(default=None, ge=0, description="frames dropped per test video (default: clip_len)")
    per_video_norm: bool = Field(default=True, description="A17: per-video min-max PSNR normalisation")


register_section("zxvad", ZxVADConfig)
