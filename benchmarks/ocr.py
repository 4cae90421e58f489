"""The judge of the legibility benchmark: an OCR we did not train (RapidOCR, PP-OCR recognizer).

Only the recognition stage runs: a plate crop is already one text line, so detection would only
add its own failures. RapidOCR's recognizer resizes every line to 48 px tall (bilinear) and
pads it to at least 320 px wide; callers pass every method's output at the same (HR) size so
that this resize is the same for all methods. Its dictionary is Chinese + Latin, so the
synthetic Chinese (CCPD-style) plates are readable too.

Text metrics compare *normalised* strings: upper case, keeping only letters and decimal
digits (Unicode categories L* and Nd). That drops spaces, dashes, dots, middle dots and the
symbols the OCR reads from seals, stickers and the EU band ("=", ":", "·", "₅"); no character is
mapped to another (O ≠ 0, I ≠ 1).
"""
from __future__ import annotations

import logging
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz.distance import Levenshtein


def normalise_plate(text: str) -> str:
    """Upper-cased ``text`` with everything but letters and decimal digits removed."""
    return "".join(c for c in text.upper() if unicodedata.category(c)[0] == "L" or unicodedata.category(c) == "Nd")


def exact_match(read: str, truth: str) -> bool:
    """Plate-level exact read: equal after :func:`normalise_plate`."""
    return normalise_plate(read) == normalise_plate(truth)


def char_accuracy(read: str, truth: str) -> float:
    """1 − Levenshtein distance / longer length, on normalised strings: in [0, 1], 1 = exact."""
    return 1.0 - Levenshtein.normalized_distance(normalise_plate(read), normalise_plate(truth))


@dataclass(frozen=True)
class Read:
    """One OCR result: the raw text and the recognizer's mean character confidence in [0, 1]."""

    text: str
    score: float


class PlateReader:
    """RapidOCR recognition of plate crops, batched.

    ``engine(img, use_det=False, use_cls=False, use_rec=True)`` on one crop pads it to the
    recognizer's 320 px minimum width, so recognising a batch of *same-shaped* crops together
    gives the identical result (tests check this) at a lower cost: :meth:`read` batches by shape.
    """

    def __init__(self, batch_size: int = 16, threads: int = 1) -> None:
        """threads: onnxruntime intra-op threads (-1 = all cores). One thread is as fast as two on a
        busy 2-core machine and does not fight other jobs for the cores."""
        from rapidocr import RapidOCR

        logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        self.engine = RapidOCR(params={"Global.log_level": "error", "Rec.rec_batch_num": batch_size,
                                       "EngineConfig.onnxruntime.intra_op_num_threads": threads})
        self.batch_size = batch_size

    def read_one(self, image: np.ndarray) -> Read:
        """The documented single-image call. image: (h, w, 3) uint8 BGR, one text line."""
        r = self.engine(image, use_det=False, use_cls=False, use_rec=True)
        if not r.txts:
            return Read("", 0.0)
        return Read(str(r.txts[0]), float(r.scores[0]))

    def _resized_by_engine(self, image: np.ndarray) -> bool:
        """True if ``engine(image)`` would first resize it (a side under 30 px or over 2000 px)."""
        lo = getattr(self.engine, "min_side_len", 30)
        hi = getattr(self.engine, "max_side_len", 2000)
        return min(image.shape[:2]) < lo or max(image.shape[:2]) > hi

    def read(self, images: Sequence[np.ndarray]) -> list[Read]:
        """Read every image (each (h, w, 3) uint8 BGR), batching same-shaped ones."""
        rec = getattr(self.engine, "_load_rec_model", None)
        if rec is None:  # a RapidOCR without the internal we batch through: one at a time
            return [self.read_one(im) for im in images]
        from rapidocr.ch_ppocr_rec.typings import TextRecInput

        recognizer = rec()
        out: list[Read | None] = [None] * len(images)
        groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, im in enumerate(images):
            if self._resized_by_engine(im):  # the engine's own pre-resize applies: keep its path
                out[i] = self.read_one(im)
            else:
                groups[im.shape].append(i)
        for idx in groups.values():
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start:start + self.batch_size]
                r = recognizer(TextRecInput(img=[np.ascontiguousarray(images[i]) for i in chunk]))
                for i, t, s in zip(chunk, r.txts, r.scores):
                    out[i] = Read(str(t), float(s))
        return out  # type: ignore[return-value]
