"""CCPD file-name labels: parsing real CCPD-style names, errors, folder iteration, YOLO-pose writing."""
import cv2
import numpy as np
import pytest

from train.ccpd import ADS, ALPHABETS, PROVINCES, iter_ccpd, parse_ccpd_name, write_ccpd_pose_dataset

# Names in the CCPD README's format (the first is the README's own example).
EXAMPLE = "025-95_113-154&383_386&473-386&473_177&454_154&383_363&402-0_0_22_27_27_33_16-37-15.jpg"
BASE = "0236015325671-90_89-235&481_529&579-529&575_235&579_236&484_529&481-0_0_3_24_30_24_31-150-142.jpg"
GREEN = "04-90_267-207&514_404&582-404&582_212&578_207&514_399&518-0_0_3_24_25_24_28_28-146-27.jpg"


def test_readme_example():
    lab = parse_ccpd_name(EXAMPLE)
    assert lab.text == "皖AY339S"
    assert lab.box.dtype == np.float32 and lab.box.tolist() == [154, 383, 386, 473]
    # CCPD lists br, bl, tl, tr; the label holds tl, tr, br, bl
    assert lab.corners.dtype == np.float32 and lab.corners.shape == (4, 2)
    assert lab.corners.tolist() == [[154, 383], [363, 402], [386, 473], [177, 454]]
    assert lab.tilt == (95, 113) and lab.brightness == 37 and lab.blur == 15 and lab.area == 25


def test_other_names_and_tables():
    lab = parse_ccpd_name("some/dir/" + BASE)
    assert lab.text == "皖AD0607" and lab.corners[0].tolist() == [236, 484] and lab.width == 294
    assert parse_ccpd_name(GREEN).text == "皖AD01044"  # CCPD2020 new-energy plates have 8 characters
    assert len(PROVINCES) == 34 and PROVINCES[0] == "皖" and PROVINCES[-1] == "O"
    assert len(ALPHABETS) == 25 and "I" not in ALPHABETS and len(ADS) == 35 and ADS[24] == "0"


@pytest.mark.parametrize("name, msg", [
    ("car.jpg", "7 '-'-separated fields"),
    ("025-95_113-154&383_386&473-386&473_177&454_154&383-0_0_22_27_27_33_16-37-15.jpg", "4 points"),
    ("025-95_113-154&383_386-386&473_177&454_154&383_363&402-0_0_22_27_27_33_16-37-15.jpg", "X&Y"),
    ("025-95_113-154&383_386&473-386&473_177&454_154&383_363&402-0_0_22_27_27_99_16-37-15.jpg", "outside"),
    ("025-95_113-154&383_386&473-386&473_177&454_154&383_363&402-0_0_22-37-15.jpg", "7 or 8 indices"),
    ("025-95_113-386&473_154&383-386&473_177&454_154&383_363&402-0_0_22_27_27_33_16-37-15.jpg", "empty"),
    ("025-x_113-154&383_386&473-386&473_177&454_154&383_363&402-0_0_22_27_27_33_16-37-15.jpg", "tilt"),
])
def test_malformed_names_raise_one_line(name, msg):
    with pytest.raises(ValueError, match=msg) as exc:
        parse_ccpd_name(name)
    assert "\n" not in str(exc.value)


def fake_ccpd(folder, names, size=(720, 1160)):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        img = np.full((*size, 3), 90, np.uint8)
        lab = parse_ccpd_name(n)
        cv2.fillPoly(img, [lab.corners.astype(np.int32)], (200, 80, 20))
        cv2.imwrite(str(folder / n), img)


def test_iter_and_pose_dataset(tmp_path):
    src = tmp_path / "ccpd"
    fake_ccpd(src / "ccpd_base", [EXAMPLE, BASE])
    fake_ccpd(src / "ccpd_green", [GREEN])
    (src / "notes.jpg").write_bytes(b"x")  # not a CCPD name
    with pytest.raises(ValueError, match="7 '-'-separated"):
        list(iter_ccpd(src))
    items = list(iter_ccpd(src, strict=False))
    assert [p.name for p, _ in items] == [BASE, EXAMPLE, GREEN]  # sorted by path
    with pytest.raises(ValueError, match="not found"):
        list(iter_ccpd(tmp_path / "nope"))

    yaml = write_ccpd_pose_dataset(src, tmp_path / "yolo", val_fraction=0.3)
    text = yaml.read_text()
    assert "kpt_shape: [4, 3]" in text and "flip_idx: [1, 0, 3, 2]" in text
    labels = sorted((tmp_path / "yolo" / "labels").rglob("*.txt"))
    assert len(labels) == 3 and len(list((tmp_path / "yolo" / "images" / "val").iterdir())) >= 1
    row = next(lb for lb in labels if EXAMPLE[:-4] in lb.name).read_text().split()
    assert len(row) == 17 and row[0] == "0"
    v = np.array(row[1:], float)
    assert v[:4] == pytest.approx([(154 + 386) / 2 / 1160, (383 + 473) / 2 / 720, 232 / 1160, 90 / 720], abs=1e-5)
    kp = v[4:].reshape(4, 3)
    assert kp[:, :2] * [1160, 720] == pytest.approx(np.array([[154, 383], [363, 402], [386, 473], [177, 454]]), abs=1e-2)
    assert kp[:, 2].tolist() == [2, 2, 2, 2]
