"""Legibility benchmark: text and image metrics on known inputs, the openalpr parser, and --quick end to end."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from benchmarks.legibility import DEFAULT_DATA, PSNR_CAP_DB, image_quality, main
from benchmarks.ocr import PlateReader, char_accuracy, exact_match, normalise_plate
from benchmarks.plate_sets import (HR_HEIGHT, WIDTH_MULTIPLE, PlateCrop, cut_plate, load_openalpr, make_lr,
                                   parse_annotation, synthetic_set, to_canonical)


# --------------------------------------------------------------------------- text metrics
@pytest.mark.parametrize("read, truth", [
    ("ab-12 3", "AB123"), ("RK·123.AB", "RK123AB"), ("G=WAGEN", "GWAGEN"), ("皖A·12345", "皖A12345"),
    ("TS₅260AK", "TS260AK"),  # a sticker read as a subscript digit is not a plate digit
])
def test_exact_match_after_normalisation(read, truth):
    assert exact_match(read, truth)


@pytest.mark.parametrize("read, truth", [("RK099AN", "RKO99AN"), ("1T43213", "IT43213"), ("AB12", "AB123")])
def test_no_character_is_mapped_to_another(read, truth):
    assert not exact_match(read, truth)


def test_normalise_keeps_letters_and_digits_only():
    assert normalise_plate(" m5-xsx\t") == "M5XSX"
    assert normalise_plate("沪A·B1234") == "沪AB1234"


@pytest.mark.parametrize("read, truth, expected", [
    ("ABC123", "ABC123", 1.0),
    ("ABX123", "ABC123", 1 - 1 / 6),   # one substitution
    ("ABC12", "ABC123", 1 - 1 / 6),    # one deletion
    ("ABCC123", "ABC123", 1 - 1 / 7),  # one insertion: divided by the longer length
    ("XYZ789", "ABC123", 0.0),
    ("", "ABC123", 0.0),
    ("ab-c 123", "ABC123", 1.0),       # normalised first
])
def test_char_accuracy_on_known_edit_distances(read, truth, expected):
    assert char_accuracy(read, truth) == pytest.approx(expected)


# --------------------------------------------------------------------------- image metrics
def test_psnr_of_identical_images_is_capped_and_ssim_one():
    img = np.random.default_rng(0).integers(0, 256, (60, 120, 3), dtype=np.uint8)
    psnr, ssim = image_quality([img], [img.copy()])
    assert psnr == [PSNR_CAP_DB] and ssim[0] == pytest.approx(1.0, abs=1e-5)


def test_psnr_of_known_noise_level():
    rng = np.random.default_rng(1)
    hr = np.full((60, 240, 3), 128, np.uint8)
    sigma = 5.0  # grey levels; 128 ± 5 sigma never clips
    noisy = np.clip(np.round(128 + rng.normal(0, sigma, hr.shape)), 0, 255).astype(np.uint8)
    small = np.full((30, 48, 3), 100, np.uint8)  # a second shape in the same call
    psnr, ssim = image_quality([noisy, small], [hr, small])
    # Rounding to integers adds 1/12 grey level² of variance.
    assert psnr[0] == pytest.approx(20 * math.log10(255 / math.sqrt(sigma**2 + 1 / 12)), abs=0.15)
    assert psnr[1] == PSNR_CAP_DB and 0 < ssim[0] < 1
    with pytest.raises(ValueError):
        image_quality([noisy], [small])


# --------------------------------------------------------------------------- openalpr parsing and crops
def test_parse_annotation_example_line_and_odd_content():
    boxes, problems = parse_annotation("eu1.jpg\t396\t340\t203\t46\tM5XSX\n")
    assert problems == [] and len(boxes) == 1
    b = boxes[0]
    assert (b.image_file, b.x, b.y, b.width, b.height, b.text) == ("eu1.jpg", 396, 340, 203, 46, "M5XSX")
    boxes, problems = parse_annotation("a.jpg 1 2 30 10 ab 12\n\nb.jpg 1 2 x 10 Q\nc.jpg 1 2\nd.jpg 0 0 0 5 Z\n")
    assert [x.text for x in boxes] == ["AB12"]
    assert len(problems) == 3 and problems[0].startswith("line 3")


def test_cut_plate_adds_margins_and_clips():
    boxes, _ = parse_annotation("eu1.jpg\t396\t340\t203\t46\tM5XSX")
    # Margins: round(0.10 * 46) = 5 px above / below, round(0.05 * 203) = 10 px left / right.
    assert cut_plate(np.zeros((500, 700, 3), np.uint8), boxes[0]).shape[:2] == (46 + 2 * 5, 203 + 2 * 10)
    crop = cut_plate(np.zeros((388, 700, 3), np.uint8), boxes[0])
    assert crop.shape[:2] == (388 - 335, 203 + 2 * 10)  # clipped at the photo's bottom edge
    hr = to_canonical(crop)
    assert hr.shape[0] == HR_HEIGHT and hr.shape[1] % WIDTH_MULTIPLE == 0


def test_load_openalpr_reports_skipped_files(tmp_path):
    photo = np.full((120, 200, 3), 200, np.uint8)
    cv2.imwrite(str(tmp_path / "a.jpg"), photo)
    (tmp_path / "a.txt").write_text("a.jpg\t50\t40\t80\t20\tAB123\n")
    (tmp_path / "b.txt").write_text("garbage\n")
    (tmp_path / "c.txt").write_text("c.jpg\t1\t1\t10\t10\tX\n")  # photo missing
    crops, report = load_openalpr(tmp_path, "t")
    assert [c.text for c in crops] == ["AB123"] and crops[0].hr.shape[0] == HR_HEIGHT
    assert set(report.skipped) == {"b.txt", "c.txt"} and report.kept == 1


def test_lr_versions_are_seeded_and_sized():
    crop = synthetic_set(1)[0]
    for scale in (2, 3, 4):
        a = make_lr(crop, 0, scale, "degrade", base_seed=7)[0]
        assert a.shape == (HR_HEIGHT // scale, crop.hr.shape[1] // scale, 3)
        assert np.array_equal(a, make_lr(crop, 0, scale, "degrade", base_seed=7)[0])
    frames = make_lr(crop, 0, 4, "degrade", frames=3)
    assert len(frames) == 3 and not np.array_equal(frames[0], frames[1])
    assert not np.array_equal(make_lr(crop, 0, 4, "degrade")[0], make_lr(crop, 1, 4, "degrade")[0])


def test_batched_reads_equal_the_documented_single_call():
    crops: list[PlateCrop] = synthetic_set(4, seed=5)
    imgs = [c.hr for c in crops] + [crops[0].hr.copy()]
    reader = PlateReader()
    assert reader.read(imgs) == [reader.read_one(im) for im in imgs]


# --------------------------------------------------------------------------- end to end
def test_quick_run_end_to_end(tmp_path):
    from sr_model.generator import GeneratorConfig, build_generator
    from sr_model.weights import save_generator

    tiny = save_generator(build_generator(GeneratorConfig(channels=8, n_blocks=1)), tmp_path / "tiny.safetensors")
    out = tmp_path / "out"
    summary = main(["--out", str(out), "--quick", "--generator", str(tiny), "--also", "onnx:fp32"])
    for f in ("legibility.json", "legibility.md", "reads.csv.gz", "gallery.png", "accuracy_vs_height.png"):
        assert (out / f).stat().st_size > 0, f
    data = json.loads((out / "legibility.json").read_text())
    assert data["config"]["scales"] == [4]
    methods = {r["method"] for r in data["results"]}
    assert {"HR", "nearest", "bicubic", "lanczos", "tiny", "plate_sr_l1_x4_onnx_fp32"} <= methods  # --also: the first
    variant = next(m for m in data["methods"] if m["name"] == "plate_sr_l1_x4_onnx_fp32")
    assert (variant["backend"], variant["precision"]) == ("onnx", "fp32")
    expected_sets = {"synthetic"} | ({"openalpr_us", "openalpr_eu"} if (DEFAULT_DATA / "openalpr").is_dir() else set())
    assert {r["set"] for r in data["results"]} == expected_sets
    for r in data["results"]:
        assert 0 <= r["exact_pct"] <= 100 and 0 <= r["char_acc"] <= 1 and r["n"] >= 1
        if r["method"] != "HR":
            assert 5 < r["psnr_db"] < PSNR_CAP_DB and -1 <= r["ssim"] <= 1 and r["lr_height"] == HR_HEIGHT // 4
    hr_synth = next(r for r in data["results"] if r["set"] == "synthetic" and r["method"] == "HR")
    assert hr_synth["exact_pct"] >= 60  # crisp rendered plates: the OCR must read them
    assert "tiny" in (out / "legibility.md").read_text()
    assert summary["timing_s"]["wall"] < 60


# --------------------------------------------------------------------------- multi-frame methods
@pytest.fixture(scope="module")
def tiny_fusion(tmp_path_factory):
    from sr_model.fusion import FusionNetConfig, build_fusion_model, save_fusion

    return save_fusion(build_fusion_model(FusionNetConfig(channels=8, dec_blocks=1, att_channels=4)),
                       tmp_path_factory.mktemp("fusion") / "tiny_fusion.safetensors")


def test_voting_reads_every_frame_and_votes_per_character():
    from benchmarks.legibility import LRInput, Results, Voted, evaluate_condition, interpolation_methods

    crops = synthetic_set(2, seed=11)
    grey = np.full_like(crops[0].hr, 128)
    # Scale-1 inputs whose frames are the HR crop itself twice and a blank frame once: bicubic
    # returns each frame unchanged, so the vote sees two true reads and one empty one.
    inputs = [LRInput((c.hr, c.hr, np.full_like(c.hr, 128)), 1, (c.hr.shape[1], c.hr.shape[0])) for c in crops]
    bicubic = interpolation_methods(["bicubic"])[0]
    voted = Voted("voted_bicubic", bicubic, frames=3)
    res = Results()
    outs, reads = evaluate_condition(crops, inputs, [bicubic, voted], PlateReader(), res, "plain")
    rows = {(r["plate"], r["method"]): r for r in res.reads}
    for c in crops:
        assert rows[(c.name, "voted_bicubic")]["exact"], rows[(c.name, "voted_bicubic")]
        assert rows[(c.name, "voted_bicubic")]["psnr_db"] is None and rows[(c.name, "bicubic")]["psnr_db"] > 90
    assert [len(r) for r in reads] == [2, 2] and np.array_equal(outs["voted_bicubic"][0], crops[0].hr)
    blank_only = [LRInput((grey,), 1, (grey.shape[1], grey.shape[0]))]
    res2 = Results()
    evaluate_condition(crops[:1], blank_only, [Voted("v", bicubic, frames=1)], PlateReader(), res2, "plain")
    assert res2.reads[0]["read"] == "" and not res2.reads[0]["exact"]  # nothing to vote on: an empty read


def test_fusion_run_end_to_end(tmp_path, tiny_fusion):
    from sr_model.generator import GeneratorConfig, build_generator
    from sr_model.weights import save_generator

    tiny = save_generator(build_generator(GeneratorConfig(channels=8, n_blocks=1)), tmp_path / "tiny.safetensors")
    out = tmp_path / "out"
    main(["--out", str(out), "--quick", "--data", str(tmp_path / "no_data"), "--synthetic", "3", "--no-shipped",
          "--generator", str(tiny), "--interpolations", "bicubic", "--degradations", "degrade",
          "--fusion", str(tiny_fusion), "--frames", "3", "--cost-tracks", "2"])
    data = json.loads((out / "legibility.json").read_text())
    methods = {r["method"] for r in data["results"]}
    assert methods == {"HR", "bicubic", "tiny", "fused", "voted_bicubic", "voted_tiny", "voted_fused"}
    assert data["config"]["degradations"] == ["degrade"]
    for r in data["results"]:
        if r["method"] in ("bicubic", "tiny", "fused"):
            assert 5 < r["psnr_db"] < PSNR_CAP_DB and r["n"] == 3
        elif r["method"].startswith("voted_"):
            assert "psnr_db" not in r and r["n"] == 3
    fused = next(m for m in data["methods"] if m["name"] == "fused")
    assert fused["frames"] == 3 and fused["frames_used_total"] + fused["frames_dropped_total"] == 9
    cost = data["fusion"]["cost"]
    assert cost["frames"] == 3 and cost["tracks_per_batch"] == 2
    for clock in ("cpu", "wall"):
        assert cost[clock]["single_ms_per_output"] > 0 and cost[clock]["fused_ms_per_output"] > 0
    md = (out / "legibility.md").read_text()
    assert "## Multi-frame fusion" in md and "### Cost" in md and "voted_fused" in md
    main(["--out", str(tmp_path / "cost"), "--no-shipped", "--generator", str(tiny), "--fusion", str(tiny_fusion),
          "--frames", "2", "--cost-tracks", "2", "--cost-only"])
    only = json.loads((tmp_path / "cost" / "cost.json").read_text())
    assert only["frames"] == 2 and only["cpu"]["fused_over_single"] > 0 and (tmp_path / "cost" / "cost.md").is_file()
