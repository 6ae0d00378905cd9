"""The ``video`` config section (decoding and feature extraction), registered here."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from omnivad.errors import ConfigError
from omnivad.sections import Section, register_check, register_section


class VideoConfig(Section):
    """Raw video decoding and feature extraction (``jobs/extract.py``)."""

    backbone: str = Field(default="i3d", description="snippet backbone: i3d (1024-d) or r3d18 (512-d)")
    weights: str | None = Field(default=None, description="local weights file of the backbone (torch state dict)")
    random_weights: bool = Field(default=False, description="random backbone weights (tests only; exclusive with weights)")
    seed: int = Field(default=0, description="seed of the random backbone weights (the same network in every actor and run)")
    width: float = Field(default=1.0, gt=0.0, le=1.0, description="channel multiplier (1.0 = the published architecture)")
    frames_per_snippet: int = Field(default=16, ge=1, description="frames per snippet")
    fps: float | None = Field(default=None, gt=0.0, description="resample to this frame rate before snippeting (default: the video's own)")
    last_snippet: Literal["drop", "pad"] = Field(
        default="drop", description="a trailing partial snippet is dropped (T = floor(frames/16), I3D extractors) or padded with its last frame (ceil)")
    resize: int = Field(default=256, ge=1, description="shorter side after resizing, pixels")
    crop_size: int = Field(default=224, ge=1, description="square crop side, pixels")
    crops: Literal["ten", "center"] = Field(default="ten", description="ten-crop (4 corners + centre, and their flips) or the centre crop")
    on_error: Literal["fail", "skip"] = Field(default="fail", description="a corrupt/unreadable video fails the job, or is skipped and reported")
    batch_size: int = Field(default=8, ge=1, description="snippets per backbone call")
    chunk_snippets: int = Field(default=4, ge=1, description="snippets per decoded block (bounds decoder memory)")
    decoders: int | None = Field(default=None, ge=1, description="concurrent decode tasks (default: Ray's choice)")
    actors: int = Field(default=1, ge=1, description="backbone actors in the pool")
    use_gpu: bool | None = Field(default=None, description="one GPU per backbone actor (default: when the cluster has GPUs)")
    cpus_per_actor: float = Field(default=1.0, gt=0.0, description="CPUs reserved per backbone actor (also its torch threads)")
    gt_end_inclusive: bool = Field(default=True, description="annotation intervals end on their last abnormal frame (UCF-Crime); false: end is exclusive")
    min_decoded_fraction: float = Field(
        default=0.95, ge=0.0, le=1.0, description="a video decoding to fewer of the frames its header promises is truncated (0: no check)")
    part_bytes: int = Field(default=128 << 20, ge=1, description="target size of the corpus part files")

    @model_validator(mode="after")
    def _crop_fits(self) -> VideoConfig:
        if self.crop_size > self.resize:
            raise ValueError(f"video.crop_size ({self.crop_size}) must not exceed video.resize ({self.resize})")
        return self


@register_check
def _check_backbone(cfg: Any) -> None:
    from omnivad.video.backbones import backbone_names

    if cfg.video.backbone not in backbone_names():
        raise ConfigError(f"video.backbone: unknown backbone {cfg.video.backbone!r} (known: {', '.join(backbone_names())})")


register_section("video", VideoConfig)
