"""Voting over a track's reads, on hand-made reads; the OCR queue (inline and bounded background);
per-track votes with their evidence and bounded memory; the reader's public names."""
from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest

from stream.reads import (Read, ReadQueue, ReadRequest, TrackRead, TrackVotes, VotedRead, evidence_index,
                          normalise_plate, vote_reads)


def test_no_reads_or_only_empty_reads_give_none():
    assert vote_reads([]) is None
    assert vote_reads([Read("", 0.9), Read(" -·", 0.8)]) is None


def test_one_read_gets_its_own_text_and_score():
    v = vote_reads([Read("ab-123", 0.7)])
    assert v == VotedRead(text="AB123", confidence=pytest.approx(0.7), n_reads=1, support=1)


def test_texts_are_normalised_before_voting():
    v = vote_reads([Read("ab 123", 0.9), Read("AB-123", 0.9), Read("A.B.1.2.3", 0.9)])
    assert v.text == "AB123" and v.support == 3 and v.confidence == pytest.approx(0.9)


def test_per_position_vote_fixes_a_character_no_single_read_has_right():
    # Every read has one wrong character, each at a different position: the vote is right.
    reads = [Read("XB123", 0.8), Read("AX123", 0.8), Read("ABX23", 0.8), Read("AB1X3", 0.8), Read("AB12X", 0.8)]
    v = vote_reads(reads)
    assert v.text == "AB123"
    assert v.support == 0 and v.n_reads == 5
    assert v.confidence == pytest.approx(0.8 * 0.8)  # each position won with 4/5 of the weight, mean score 0.8


def test_characters_are_weighted_by_score():
    # Two low-score reads say 8, one high-score read says B: 0.9 > 0.3 + 0.3.
    v = vote_reads([Read("A8C", 0.3), Read("A8C", 0.3), Read("ABC", 0.9)])
    assert v.text == "ABC"
    # length agreement 1; position 2: 0.9 / 1.5; mean score 0.5
    assert v.confidence == pytest.approx((1 + 0.6 + 1) / 3 * 0.5)


def test_length_is_chosen_by_weighted_majority_and_other_lengths_do_not_vote_on_characters():
    reads = [Read("AB123", 0.6), Read("AB128", 0.6), Read("AB1234", 0.95), Read("AB123", 0.2)]
    v = vote_reads(reads)
    assert v.text == "AB123"  # length 5 weighs 1.4 > 0.95; the 6-long read has no say in the characters
    assert v.n_reads == 4 and v.support == 2
    length_agreement = 1.4 / (1.4 + 0.95)
    chars = (4 + (0.8 / 1.4)) / 5
    assert v.confidence == pytest.approx(length_agreement * chars * (0.6 + 0.6 + 0.2) / 3)


def test_disagreement_lowers_confidence():
    agree = vote_reads([Read("AB123", 0.9)] * 4)
    mixed = vote_reads([Read("AB123", 0.9)] * 3 + [Read("AB128", 0.9)])
    assert 0 < mixed.confidence < agree.confidence <= 1


def test_character_tie_goes_to_more_reads_then_higher_single_score_then_smaller_code_point():
    # equal weight 0.8: one read of 0.8 against two of 0.4 -> the two reads win
    assert vote_reads([Read("A", 0.8), Read("B", 0.4), Read("B", 0.4)]).text == "B"
    # equal weight and count: the higher single score wins
    assert vote_reads([Read("AC", 0.5), Read("AC", 0.3), Read("BD", 0.6), Read("BD", 0.2)]).text == "BD"
    # all equal: the smaller code point
    assert vote_reads([Read("B", 0.5), Read("A", 0.5)]).text == "A"


def test_length_tie_goes_to_more_reads_then_the_longer_text():
    assert vote_reads([Read("ABC", 0.6), Read("ABCD", 0.3), Read("ABCD", 0.3)]).text == "ABCD"
    assert vote_reads([Read("ABCD", 0.3), Read("ABC", 0.6), Read("ABCD", 0.3)]).text == "ABCD"
    assert vote_reads([Read("XYZ", 0.5), Read("XYZW", 0.5)]).text == "XYZW"


def test_vote_does_not_depend_on_read_order():
    reads = [Read("AB123", 0.7), Read("A8123", 0.71), Read("AB1Z3", 0.33), Read("AB12", 0.9), Read("", 0.99),
             Read("4B123", 0.5)]
    results = {vote_reads(list(p)) for p in itertools.permutations(reads)}
    assert len(results) == 1


def test_zero_scores_still_vote_but_give_zero_confidence():
    v = vote_reads([Read("AB1", 0.0), Read("AB1", 0.0), Read("XY2", 0.0)])
    assert v.text == "AB1" and v.confidence == 0.0


def test_scores_outside_unit_range_are_clipped():
    v = vote_reads([Read("AB1", 1.7), Read("AB1", -0.5)])
    assert v.text == "AB1" and 0.0 <= v.confidence <= 1.0


def test_unicode_plates_vote_per_character():
    v = vote_reads([Read("皖A·12345", 0.9), Read("皖A12345", 0.8), Read("院A12345", 0.5)])
    assert v.text == "皖A12345" and v.support == 2


def test_evidence_is_the_best_read_equal_to_the_vote_else_the_closest_of_its_length():
    reads = [Read("AB123", 0.6), Read("AB128", 0.9), Read("ab-123", 0.8), Read("AB1234", 0.99)]
    v = vote_reads(reads)
    assert v.text == "AB123" and evidence_index(reads, v) == 2
    no_exact = [Read("XB123", 0.8), Read("AX123", 0.9), Read("AB12", 0.99)]
    assert evidence_index(no_exact, VotedRead("AB123", 0.5, 3, 0)) == 1
    assert evidence_index([Read("A", 0.9)], VotedRead("AB", 0.5, 1, 0)) is None


def test_benchmark_module_keeps_its_public_names():
    import benchmarks.ocr as ocr
    import stream.reads as reads

    assert ocr.PlateReader is reads.PlateReader and ocr.Read is reads.Read
    assert ocr.normalise_plate is reads.normalise_plate
    assert ocr.exact_match("ab-1", "AB1") and ocr.char_accuracy("AB12", "AB12") == 1.0
    assert normalise_plate("沪A·B1234") == "沪AB1234"


# --------------------------------------------------------------------------- reads in a pipeline
class _ScriptedReader:
    """Reads the i-th image as ``texts[i % len(texts)]`` with score 0.8."""

    def __init__(self, texts) -> None:
        self.texts, self.n = list(texts), 0

    def read(self, images):
        out = [Read(self.texts[(self.n + i) % len(self.texts)], 0.8) for i in range(len(images))]
        self.n += len(images)
        return out


class _SlowReader:
    """Reads every image as "AB1" after waiting for ``gate`` (so a test controls how long it is busy)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.batches = 0

    def read(self, images):
        self.gate.wait(10)
        self.batches += 1
        return [Read("AB1", 0.9) for _ in images]


def _req(track_id: int, frame: int) -> ReadRequest:
    return ReadRequest(track_id, frame, frame / 30, np.zeros((8, 24, 3), np.uint8))


def test_inline_queue_reads_every_request_at_once():
    q = ReadQueue(_ScriptedReader(["X1", "X2"]))
    q.submit([_req(1, 0), _req(2, 0)])
    got = q.poll()
    assert [(r.track_id, r.read.text) for r in got] == [(1, "X1"), (2, "X2")] and q.done == 2
    assert q.poll() == [] and q.close() == []


def test_background_queue_never_blocks_and_drops_while_busy():
    reader = _SlowReader()
    q = ReadQueue(reader, background=True, max_pending=1)
    t0 = time.monotonic()
    for frame in range(10):  # the OCR thread is stuck on the first batch: the rest wait or drop
        q.submit([_req(1, frame)])
    assert time.monotonic() - t0 < 0.5  # submit never waited for the reader
    assert q.poll() == []
    assert q.dropped >= 8  # one batch on the thread, at most one waiting
    reader.gate.set()
    left = q.close(wait_s=5)
    assert 1 <= len(left) <= 2 and q.done == len(left) and q.done + q.dropped == 10
    assert all(isinstance(r, TrackRead) and r.read.text == "AB1" for r in left)


def test_background_queue_survives_a_failing_reader():
    class Broken:
        def read(self, images):
            raise RuntimeError("onnx exploded")

    q = ReadQueue(Broken(), background=True)
    q.submit([_req(1, 0)])
    assert q.close(wait_s=5) == [] and q.failed == 1


def _tr(track_id: int, frame: int, text: str, score: float, value: int = 0) -> TrackRead:
    return TrackRead(track_id, frame, frame / 30, Read(text, score), np.full((4, 4, 3), value, np.uint8))


def test_track_votes_keep_the_best_evidence_for_the_current_vote():
    v = TrackVotes()
    v.add(_tr(1, 0, "AB128", 0.5, value=1), clock=0)
    assert v.voted(1).text == "AB128" and v.evidence(1).frame_index == 0
    v.add(_tr(1, 5, "AB123", 0.9, value=2), clock=5)
    v.add(_tr(1, 9, "AB123", 0.7, value=3), clock=9)
    assert v.voted(1).text == "AB123"
    ev = v.evidence(1)
    assert ev.frame_index == 5 and ev.read.score == 0.9 and int(ev.image[0, 0, 0]) == 2
    v.add(_tr(1, 12, "", 0.0), clock=12)  # an empty read changes nothing
    assert v.voted(1).text == "AB123" and v.evidence(1).frame_index == 5 and v.voted(1).n_reads == 3


def test_track_votes_are_bounded_and_forget_gone_tracks_once_written():
    v = TrackVotes(max_reads=4, forget_after=10)
    for f in range(20):
        v.add(_tr(1, f, "OLD1" if f < 10 else "NEW1", 0.9), clock=f)
    assert v.voted(1).text == "NEW1" and v.voted(1).n_reads == 4  # only the last 4 reads vote
    v.add(_tr(2, 0, "ZZ9", 0.9), clock=0)
    v.seen([1], clock=30)  # track 2 gone for 30 > 10 ticks, but its evidence is not on disk yet
    assert v.voted(2) is not None
    v.evidence(2).written = True
    v.seen([1], clock=31)
    assert v.voted(2) is None and v.voted(1) is not None and v.track_ids() == [1]
