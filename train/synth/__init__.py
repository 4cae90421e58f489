"""Synthetic data for LicenseEnhancer: plates, moving traffic scenes, SR degradations.

Everything is procedural and deterministic by seed; nothing is downloaded. The Chinese
``ccpd_blue`` plates need the Debian font package ``fonts-wqy-microhei``.
"""
from .degrade import crop_to_multiple, degrade, make_sr_pair, plain_downscale
from .plates import STYLES, PlateImage, find_cjk_font, random_plate_text, render_plate
from .scenes import (
    ClipTruth,
    PlateTruth,
    Scene,
    SceneConfig,
    iter_scene_frames,
    load_clip_truth,
    render_scene_frame,
    write_detection_dataset,
    write_scene_clip,
)

__all__ = [
    "STYLES", "PlateImage", "find_cjk_font", "random_plate_text", "render_plate",
    "ClipTruth", "PlateTruth", "Scene", "SceneConfig", "iter_scene_frames", "load_clip_truth",
    "render_scene_frame", "write_detection_dataset", "write_scene_clip",
    "crop_to_multiple", "degrade", "make_sr_pair", "plain_downscale",
]
