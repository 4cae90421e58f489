"""The recognizer training runs offline end to end on a tiny config and writes its run files."""
import csv
import json

import pytest
import torch
from safetensors.torch import load_file

from sr_model.recognizer import load_recognizer
from train.recognizer import TrainSettings, main, split_real, train_recognizer

TINY = TrainSettings(steps=24, batch=8, lr=1e-2, pool=12, val_synthetic=4, channels=4, hidden=8, height=16,
                     width=48, eval_every=8, use_real=False)


def test_tiny_training_writes_weights_csv_config_and_loss_decreases(tmp_path):
    torch.set_num_threads(1)
    out, run = tmp_path / "r.safetensors", tmp_path / "run"
    info = train_recognizer(out, run, TINY, data_dir=tmp_path / "no_data", threads=1)
    model = load_recognizer(out)
    assert model.config.channels == 4 and model.info == json.loads(json.dumps(info))
    assert info["accuracy"]["us_val"] is None and info["accuracy"]["eu_plates"] == 0  # no real data here
    assert 0.0 <= info["accuracy"]["synthetic_clean"] <= 1.0
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert [int(r["step"]) for r in rows] == [8, 16, 24]
    assert set(rows[0]) >= {"step", "loss", "acc_synthetic", "acc_synthetic_degraded", "acc_us_val"}
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])  # mean CTC loss over steps 17-24 < steps 1-8
    assert json.loads((run / "config.json").read_text())["settings"]["steps"] == 24
    assert (run / "checkpoint.pt").is_file()

    # --resume continues from the checkpoint (here: already at the last step) and keeps the log.
    again = train_recognizer(tmp_path / "r2.safetensors", run, TINY, data_dir=tmp_path / "no_data", resume=True)
    assert again["accuracy"] == info["accuracy"]
    first, resumed = load_file(str(out)), load_file(str(tmp_path / "r2.safetensors"))
    assert first.keys() == resumed.keys() and all(torch.equal(first[k], resumed[k]) for k in first)
    with pytest.raises(ValueError, match="settings differ"):
        train_recognizer(out, run, TrainSettings(**{**TINY.__dict__, "steps": 30}), data_dir=tmp_path, resume=True)


def test_cli_rejects_resume_without_checkpoint(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--resume", "--run-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "x.safetensors")])
    assert exc.value.code == 2 and "no checkpoint" in capsys.readouterr().err


def test_real_split_is_fixed_and_disjoint():
    samples = [(None, f"P{i}") for i in range(50)]
    train, val = split_real(samples, seed=0)
    assert len(train) == 40 and len(val) == 10
    assert {t for _, t in train}.isdisjoint({t for _, t in val})
    assert split_real(samples, seed=0) == (train, val) and split_real(samples, seed=1) != (train, val)
