import json

from benchmarks.throughput import main


def test_quick_throughput_run_writes_tables_and_plot(tmp_path):
    main(["--out", str(tmp_path), "--quick"])
    res = json.loads((tmp_path / "throughput.json").read_text())
    assert res["machine"]["cores"] >= 1
    gen = [g for g in res["generator"] if "crops_per_s" in g]
    assert {g["backend"] for g in gen} >= {"eager", "onnx"} and all(g["crops_per_s"] > 0 for g in gen)
    assert res["videos"][0]["end_to_end_fps_detect_every_1"] > 0
    assert res["videos"][0]["end_to_end_fps_no_video_detect_every_1"] > 0  # enhance-video --no-video
    assert res["videos"][0]["end_to_end_fps_reads_detect_every_1"] > 0  # enhance-video default: plates read
    assert res["videos"][0]["reads_detect_every_1"]["done"] > 0
    enc = {(r["preset"], r["x264_params"]): r for r in res["encoder"]}
    assert [r["preset"] for r in res["encoder"] if r["default"]] == ["veryfast"]
    assert enc[("veryfast", "subme=1:me=dia")]["y_psnr_db"] > 30 and all(r["kib"] > 0 for r in enc.values())
    assert (tmp_path / "throughput.md").read_text().startswith("Machine:")
    assert (tmp_path / "throughput.png").stat().st_size > 1000


def test_naive_baseline_and_streams_rows(tmp_path):
    from benchmarks.throughput import naive_pipeline, streams_row
    from stream.source import VideoSource
    from train.synth.scenes import SceneConfig, write_scene_clip

    clip = write_scene_clip(tmp_path / "clip", SceneConfig(width=320, height=192, seconds=0.5, n_plates=1), seed=5)
    pipe = naive_pipeline("cpu")
    assert pipe.config.detect_batch == 1 and pipe.config.sr_interval_s == 0 and not pipe.config.background_encode
    with VideoSource(clip.video_path) as src:
        res = pipe.run(src, tmp_path / "naive", progress=False)
    assert res.frames == 15 and res.fps > 0
    row = streams_row(clip.video_path, 2, tmp_path / "two", "cpu")
    assert row["streams"] == 2 and row["frames_per_stream"] == 15 and row["total_fps"] >= row["min_stream_fps"] > 0
    row = streams_row(clip.video_path, 2, tmp_path / "nv", "cpu", ("--no-video",))
    assert row["streams"] == 2 and row["frames_per_stream"] == 15
    assert list((tmp_path / "nv").rglob("report.json")) and not list((tmp_path / "nv").rglob("annotated.mp4"))
