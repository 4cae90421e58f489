import numpy as np
import pytest
import torch

from sr_model.enhancer import PlateEnhancer
from sr_model.generator import GENERATORS, GeneratorConfig, build_generator
from sr_model.weights import (DEFAULT_WEIGHTS, WEIGHTS_DIR, WeightsError, load_generator, read_metadata, save_generator,
                              update_info)


@pytest.mark.parametrize("arch", sorted(GENERATORS))
def test_round_trip_keeps_outputs(tmp_path, arch):
    model = build_generator(GeneratorConfig(arch=arch, channels=8, n_blocks=2)).eval()
    torch.nn.init.normal_(list(model.parameters())[-2], std=0.01)  # no all-zero tail
    path = save_generator(model, tmp_path / "g.safetensors", info={"note": "test"})
    loaded, info = load_generator(path)
    sha = info.pop("sha256")  # added on load: the file's hash, for provenance
    assert len(sha) == 16 and info == {"note": "test"} and loaded.config == model.config
    x = torch.rand(2, 3, 12, 36)
    with torch.inference_mode():
        assert torch.allclose(model(x), loaded(x), atol=1e-6)
    update_info(path, {"benchmark": {"x": 1}})
    again, info2 = load_generator(path)
    assert info2.pop("sha256") != sha  # the metadata changed, so the file did
    assert info2 == {"note": "test", "benchmark": {"x": 1}}
    with torch.inference_mode():
        assert torch.equal(again(x), loaded(x))


def test_shipped_weights_load_and_record_their_training():
    assert DEFAULT_WEIGHTS.stat().st_size < 5 * 2**20  # a few MB at most
    config, info = read_metadata(DEFAULT_WEIGHTS)
    assert config["arch"] in GENERATORS and config["scale"] == 4
    assert "trained_on" in info and "val" in info
    model, _ = load_generator()
    assert not model.training


def test_every_weights_file_in_the_package_loads():
    files = sorted(WEIGHTS_DIR.glob("*.safetensors"))
    gens = [f for f in files if f.name.startswith(("plate_sr", "srresnet"))]  # generators (not recognizer, fusion)
    assert DEFAULT_WEIGHTS in gens
    for f in gens:
        model, info = load_generator(f)
        assert model.scale in (2, 3, 4) and f.stat().st_size < 5 * 2**20 and info


def test_missing_corrupt_and_wrong_arch_weights_fail_clearly(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_generator(tmp_path / "nope.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00\x01not a safetensors file" * 10)
    with pytest.raises(WeightsError, match="cannot read"):
        load_generator(junk)
    # Right format, wrong tensors: a 16-channel file relabelled as a 32-channel model.
    small = save_generator(build_generator(GeneratorConfig(channels=16, n_blocks=1)), tmp_path / "s.safetensors")
    from safetensors.torch import load_file, save_file

    save_file(load_file(str(small)), str(tmp_path / "bad.safetensors"),
              metadata={"config": '{"arch": "srresnet", "scale": 4, "channels": 32, "n_blocks": 1}'})
    with pytest.raises(WeightsError, match="does not fit"):
        load_generator(tmp_path / "bad.safetensors")
    save_file(load_file(str(small)), str(tmp_path / "arch.safetensors"),
              metadata={"config": '{"arch": "espcn_res", "scale": 4, "channels": 16, "n_blocks": 1}'})
    with pytest.raises(WeightsError, match="does not fit"):
        load_generator(tmp_path / "arch.safetensors")


def test_enhancer_handles_mixed_sizes_and_big_crops():
    enhancer = PlateEnhancer()
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in [(12, 40), (20, 70), (9, 30), (100, 300)]]
    out = enhancer.enhance(crops)
    assert [o.shape for o in out[:3]] == [(48, 160, 3), (80, 280, 3), (36, 120, 3)]
    # taller than max_input_height: shrunk to it first, then ×4
    assert out[3].shape[0] == 4 * enhancer.config.max_input_height and out[3].dtype == np.uint8


def test_enhancer_output_does_not_depend_on_batch_company():
    enhancer = PlateEnhancer()
    rng = np.random.default_rng(1)
    a = rng.integers(0, 255, (16, 60, 3), dtype=np.uint8)
    alone = enhancer.enhance([a])[0]
    together = enhancer.enhance([a, rng.integers(0, 255, (16, 100, 3), dtype=np.uint8)])[0]
    # `a` is edge-padded on the right to the batch's width; pixels farther from the padding than
    # the network's receptive field (~16 LR px) must not change.
    reach = 4 * 17
    assert np.abs(alone[:, :-reach].astype(int) - together[:, :-reach].astype(int)).max() <= 1
    assert np.abs(alone.astype(int) - together.astype(int)).mean() < 2


def test_enhancer_pads_batches_to_few_shapes():
    # The back ends cache kernels per input shape; crops of every size must not mean a new shape each.
    enhancer = PlateEnhancer()
    seen = []
    run = enhancer._run
    enhancer._run = lambda x: (seen.append(tuple(x.shape[2:])), run(x))[1]
    rng = np.random.default_rng(2)
    sizes = [(h, w) for h in (9, 13, 17, 30) for w in (31, 45, 77)]
    out = enhancer.enhance([rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in sizes])
    assert [o.shape[:2] for o in out] == [(4 * h, 4 * w) for h, w in sizes]
    m = enhancer.config.pad_multiple
    assert m > 1 and all(h % m == 0 and w % m == 0 for h, w in seen)
