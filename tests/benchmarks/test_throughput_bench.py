import json

from benchmarks.throughput import main


def test_quick_throughput_run_writes_tables_and_plot(tmp_path):
    main(["--out", str(tmp_path), "--quick"])
    res = json.loads((tmp_path / "throughput.json").read_text())
    assert res["machine"]["cores"] >= 1
    gen = [g for g in res["generator"] if "crops_per_s" in g]
    assert {g["backend"] for g in gen} >= {"eager", "onnx"} and all(g["crops_per_s"] > 0 for g in gen)
    assert res["videos"][0]["end_to_end_fps_detect_every_1"] > 0
    assert (tmp_path / "throughput.md").read_text().startswith("Machine:")
    assert (tmp_path / "throughput.png").stat().st_size > 1000
