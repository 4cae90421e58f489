"""The CLI's promise: bad input gets one clear line on stderr and a non-zero exit, no traceback."""
import subprocess
import sys

import pytest


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stream", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def assert_one_line_error(proc: subprocess.CompletedProcess, fragment: str) -> None:
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert fragment in lines[0], lines[0]


def test_help_documents_every_option():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for option in ("--out", "--detector", "--generator", "--imgsz", "--conf", "--detect-every", "--no-sr",
                   "--crf", "--preset", "--x264-params", "--threads", "--hwaccel", "--quiet", "--rtsp-transport", "--open-timeout",
                   "--read-timeout", "--max-reconnects", "--max-lag", "--status-interval", "--duration", "--backend", "--precision", "--device",
                   "--sr-interval", "--fuse", "--fusion-weights", "--no-read", "--roi", "--no-video", "--workers", "--read-from",
                   "--reread-settled", "--video-height", "--skip-still",
                   "--coarse-pass", "--no-coarse-pass"):
        assert option in proc.stdout


def test_missing_file(tmp_path):
    assert_one_line_error(run_cli(str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "o")), "input not found")


def test_text_file_is_not_a_video(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# not a video\n")
    assert_one_line_error(run_cli(str(readme), "-o", str(tmp_path / "o")), "cannot open")


def test_directory(tmp_path):
    assert_one_line_error(run_cli(str(tmp_path), "-o", str(tmp_path / "o")), "directory")


def test_corrupt_generator_weights(tmp_path):
    bad = tmp_path / "g.safetensors"
    bad.write_bytes(b"garbage" * 100)
    from conftest import make_video

    clip = make_video(tmp_path / "v.mp4", n_frames=5)
    assert_one_line_error(run_cli(str(clip), "-o", str(tmp_path / "o"), "--generator", str(bad)), "cannot read")


@pytest.mark.parametrize("args, fragment", [(["--detect-every", "0"], "detect-every"), (["--imgsz", "100"], "imgsz"),
                                            (["--imgsz", "big"], "imgsz"), (["--fuse", "-1"], "fuse"),
                                            (["--fuse", "99"], "fuse"), (["--preset", "quick"], "--preset"),
                                            (["--roi", "1,2,3"], "--roi"),
                                            (["--roi", "0,0,0,10"], "--roi"),
                                            (["--detector-batch", "0"], "--detector-batch"),
                                            (["--reread-settled", "-1"], "--reread-settled"),
                                            (["--video-height", "8"], "--video-height"),
                                            (["--skip-still", "-1"], "--skip-still")])
def test_bad_options(tmp_path, args, fragment):
    proc = run_cli(str(tmp_path / "x.mp4"), *args)
    assert proc.returncode == 2 and fragment in proc.stderr and "Traceback" not in proc.stderr


def test_backend_that_cannot_run_here_is_a_one_line_error(tmp_path):
    from conftest import make_video

    clip = make_video(tmp_path / "v.mp4", n_frames=3)
    proc = run_cli(str(clip), "-o", str(tmp_path / "o"), "--backend", "eager", "--precision", "fp16")
    assert_one_line_error(proc, "fp16")
    assert proc.returncode == 2


def test_detector_backend_option(tmp_path):
    import json

    from conftest import make_video

    clip = make_video(tmp_path / "v.mp4", n_frames=3)
    proc = run_cli(str(clip), "-o", str(tmp_path / "o"), "--no-read", "--quiet", "--no-sr",
                   "--detector-backend", "onnx", "--detector-precision", "f32", "--imgsz", "640", "--coarse-pass",
                   "--detector-batch", "2")
    assert proc.returncode == 0, proc.stderr
    detector = json.loads((tmp_path / "o" / "report.json").read_text())["models"]["detector"]
    assert (detector["backend"], detector["precision"]) == ("onnx", "f32")
    assert detector["imgsz"] == 640 and detector["coarse_pass"] == "on" and detector["batch_size"] == 2


def test_coarse_pass_flags():
    """Default: the detector decides by frame size; --coarse-pass always, --no-coarse-pass never.
    Plain flags, so an input after --coarse-pass is never taken for its value."""
    from stream.cli import build_parser

    parse = build_parser().parse_args
    assert parse(["a.mp4"]).coarse_pass == "auto"
    assert parse(["--coarse-pass", "a.mp4"]).coarse_pass == "on" and parse(["--coarse-pass", "a.mp4"]).input == ["a.mp4"]
    assert parse(["a.mp4", "--no-coarse-pass"]).coarse_pass == "off"


def test_zoom_option(tmp_path):
    """--zoom sets the detector's input by enlargement and is recorded in the report; with
    --imgsz, or out of range, it is a usage error."""
    import json

    from conftest import make_video

    clip = make_video(tmp_path / "v.mp4", n_frames=3)
    proc = run_cli(str(clip), "-o", str(tmp_path / "o"), "--no-read", "--quiet", "--no-sr", "--zoom", "1.5")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "o" / "report.json").read_text())["models"]["detector"]["imgsz"] == "zoom 1.5"
    for args, fragment in ((["--zoom", "2", "--imgsz", "640"], "give one"), (["--zoom", "0"], "--zoom must")):
        proc = run_cli(str(clip), "-o", str(tmp_path / "p"), *args)
        assert proc.returncode == 2 and fragment in proc.stderr and "Traceback" not in proc.stderr


def test_missing_corner_refiner_weights_is_a_one_line_error(tmp_path):
    from conftest import make_video

    clip = make_video(tmp_path / "v.mp4", n_frames=3)
    proc = run_cli(str(clip), "-o", str(tmp_path / "o"), "--corner-refiner", str(tmp_path / "none.safetensors"))
    assert_one_line_error(proc, "corner refiner weights not found")


def test_missing_fusion_weights_is_a_one_line_error(tmp_path):
    from conftest import make_video

    clip = make_video(tmp_path / "v.mp4", n_frames=3)
    proc = run_cli(str(clip), "-o", str(tmp_path / "o"), "--fuse", "3", "--fusion-weights", str(tmp_path / "none.safetensors"))
    assert_one_line_error(proc, "fusion weights not found")
    assert proc.returncode == 2


def test_no_read_run(tmp_path):
    import json

    from conftest import make_video

    clip = make_video(tmp_path / "v.mp4", n_frames=5)
    proc = run_cli(str(clip), "-o", str(tmp_path / "o"), "--no-read", "--fuse", "0", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "tracks read" not in proc.stdout
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["reads"] == {"enabled": False} and report["fusion"] == {"k": 0}
    # provenance: the models that ran, on the default CPU paths
    models = report["models"]
    assert models["detector"]["backend"] == "openvino" and len(models["detector"]["weights_sha256"]) == 16
    assert models["detector"]["precision"] in ("f32", "bf16") and models["detector"]["imgsz"] == "auto"
    assert len(models["detector"]["corner_refiner_sha256"]) == 16  # on by default
    assert models["generator"]["backend"] == "onnx" and models["generator"]["precision"] == "int8"
    assert models["generator"]["arch"] == "espcn_res" and len(models["generator"]["weights_sha256"]) == 16
    assert models["fusion"] is None


def test_no_video_run_leaves_out_the_video_and_says_so(tmp_path):
    import json

    from conftest import make_video

    clip = make_video(tmp_path / "v.mp4", n_frames=5)
    out = tmp_path / "o"
    proc = run_cli(str(clip), "-o", str(out), "--no-video", "--no-read", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert not (out / "annotated.mp4").exists() and (out / "tracks.jsonl").is_file()
    assert "annotated.mp4" not in proc.stdout and "tracks.jsonl, report.json" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["outputs"]["video"] is None and report["frames_processed"] == 5


def test_several_inputs_run_in_one_process_with_one_folder_each(tmp_path, clip_3s):
    import json

    from conftest import make_video

    other = make_video(tmp_path / "plain.mp4", n_frames=12)
    out = tmp_path / "out"
    proc = run_cli(str(clip_3s.video_path), str(other), str(clip_3s.video_path), "-o", str(out), "--quiet",
                   "--no-read")
    assert proc.returncode == 0, proc.stderr
    folders = {"clip": clip_3s.n_frames, "plain": 12, "clip_2": clip_3s.n_frames}  # same name twice: numbered
    for name, n_frames in folders.items():
        report = json.loads((out / name / "report.json").read_text())
        assert report["frames_processed"] == n_frames
        assert (out / name / "annotated.mp4").stat().st_size > 0
    tracks = [json.loads((out / n / "report.json").read_text())["tracks"] for n in ("clip", "clip_2")]
    assert len(tracks[0]) >= 2 and len(tracks[0]) == len(tracks[1])  # the same input gives the same tracks
    assert proc.stdout.count("frames in") == 3


def test_a_bad_input_among_several_fails_before_any_work(tmp_path):
    from conftest import make_video

    good = make_video(tmp_path / "good.mp4", n_frames=5)
    proc = run_cli(str(good), str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "o"), "--quiet")
    assert_one_line_error(proc, "input not found")
    assert proc.returncode == 2 and not (tmp_path / "o" / "good").exists()


def test_region_of_interest_outside_the_frame_is_a_one_line_error_before_any_output(tmp_path):
    from conftest import make_video

    clip = make_video(tmp_path / "v.mp4", n_frames=5, width=160, height=96)
    out = tmp_path / "o"
    assert_one_line_error(run_cli(str(clip), "-o", str(out), "--roi", "160,0,10,10"), "outside the 160x96 frame")
    assert not out.exists()
