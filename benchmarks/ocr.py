"""The judge of the legibility benchmark: an OCR we did not train (RapidOCR, PP-OCR recognizer).

The reader itself is the product's (:mod:`stream.reads`: recognition only, batched by shape);
this module re-exports it and adds the text metrics. Callers pass every method's output at the
same (HR) size so that the recognizer's resize to 48 px tall is the same for all methods.

Text metrics compare *normalised* strings (:func:`stream.reads.normalise_plate`): upper case,
keeping only letters and decimal digits; no character is mapped to another (O ≠ 0, I ≠ 1).
"""
from __future__ import annotations

from rapidfuzz.distance import Levenshtein

from stream.reads import PlateReader, Read, VotedRead, normalise_plate, vote_reads

__all__ = ["PlateReader", "Read", "VotedRead", "normalise_plate", "vote_reads", "exact_match", "char_accuracy"]


def exact_match(read: str, truth: str) -> bool:
    """Plate-level exact read: equal after :func:`normalise_plate`."""
    return normalise_plate(read) == normalise_plate(truth)


def char_accuracy(read: str, truth: str) -> float:
    """1 − Levenshtein distance / longer length, on normalised strings: in [0, 1], 1 = exact."""
    return 1.0 - Levenshtein.normalized_distance(normalise_plate(read), normalise_plate(truth))
