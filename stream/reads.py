"""Plate reads: an independent OCR (RapidOCR's PP-OCR recognizer) on plate crops, and a vote
over one track's reads.

Only the recognition stage runs: a plate crop is already one text line, so detection would only
add its own failures. RapidOCR's recognizer resizes every line to 48 px tall (bilinear) and
pads it to at least 320 px wide. Its dictionary is Chinese + Latin, so Chinese (CCPD-style)
plates are readable too.

Texts are compared *normalised* (:func:`normalise_plate`): upper case, keeping only letters and
decimal digits (Unicode categories L* and Nd). That drops spaces, dashes, dots, middle dots and
the symbols the OCR reads from seals, stickers and the EU band ("=", ":", "·", "₅"); no character
is mapped to another (O ≠ 0, I ≠ 1).

Voting (:func:`vote_reads`) over a track's reads, each weighted by its OCR score:

1. normalise every read and drop the empty ones; no read left → ``None``;
2. weight ``w = score`` clipped to [0, 1], NaN = 0 (if every weight is 0, all reads weigh 1 instead);
3. the plate length is the length with the largest total weight (ties: more reads, then the
   longer length, since a blurred plate loses characters more often than it gains them);
4. only reads of that length vote on characters: at each position the character with the
   largest total weight wins (ties: more reads, then the highest single score, then the
   smaller code point), so the result never depends on the order of the reads;
5. ``confidence = length_agreement × character_agreement × mean_score`` where
   ``length_agreement`` = weight of the chosen length / total weight,
   ``character_agreement`` = mean over positions of winning weight / weight of that length,
   ``mean_score`` = mean OCR score of the reads of the chosen length; all in [0, 1]. One read
   alone gets its own score; reads that disagree lower it.

In the pipeline (:mod:`stream.pipeline`): :class:`ReadQueue` runs the reader inline (files: every
requested read happens) or on one background thread that drops requests while it is busy (live
streams: the frame loop never waits for the OCR); :class:`TrackVotes` keeps each track's last
reads, its vote and the *evidence* (the read, and the image it was read from, that best shows the
voted text: :func:`evidence_key`), with memory bounded by the tracks seen recently.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
import unicodedata
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


def normalise_plate(text: str) -> str:
    """Upper-cased ``text`` with everything but letters and decimal digits removed."""
    return "".join(c for c in text.upper() if unicodedata.category(c)[0] == "L" or unicodedata.category(c) == "Nd")


@dataclass(frozen=True)
class Read:
    """One OCR result: the raw text and the recognizer's mean character confidence in [0, 1]."""

    text: str
    score: float


@dataclass(frozen=True)
class VotedRead:
    """A track's plate text voted over its reads (see :func:`vote_reads`).

    text: normalised plate text; confidence: in [0, 1]; n_reads: non-empty reads that voted;
    support: reads whose normalised text equals ``text`` exactly."""

    text: str
    confidence: float
    n_reads: int
    support: int


def _unit(score: float) -> float:
    """``score`` clipped to [0, 1]; NaN counts as 0."""
    s = float(score)
    return min(max(s, 0.0), 1.0) if s == s else 0.0


def _weights(scores: Sequence[float]) -> list[float]:
    w = [_unit(s) for s in scores]
    return w if sum(w) > 0 else [1.0] * len(w)


def _key(weight: float) -> float:
    return round(weight, 9)  # float sums of the same weights in another order compare equal


def vote_reads(reads: Sequence[Read]) -> VotedRead | None:
    """Score-weighted length vote, then per-position score-weighted character vote among the reads
    of the winning length (rules in the module docstring). ``None`` when no read has any letter or
    digit. Independent of the order of ``reads``."""
    texts = [normalise_plate(r.text) for r in reads]
    # sorted, so float sums (and so the confidence) come out bit-identical in any read order
    kept = sorted((t, float(r.score)) for t, r in zip(texts, reads) if t)
    if not kept:
        return None
    weights = _weights([s for _, s in kept])
    total = sum(weights)
    by_len: dict[int, list[int]] = defaultdict(list)
    for i, (t, _) in enumerate(kept):
        by_len[len(t)].append(i)
    length = max(by_len, key=lambda n: (_key(sum(weights[i] for i in by_len[n])), len(by_len[n]), n))
    group = by_len[length]
    w_len = sum(weights[i] for i in group)
    chars: list[str] = []
    agreement = 0.0
    for pos in range(length):
        votes: dict[str, list[float]] = defaultdict(lambda: [0.0, 0, 0.0])  # weight, count, best score
        for i in group:
            v = votes[kept[i][0][pos]]
            v[0] += weights[i]
            v[1] += 1
            v[2] = max(v[2], _unit(kept[i][1]))
        ch = max(votes, key=lambda c: (_key(votes[c][0]), votes[c][1], votes[c][2], -ord(c)))
        chars.append(ch)
        agreement += votes[ch][0] / w_len
    text = "".join(chars)
    mean_score = sum(_unit(kept[i][1]) for i in group) / len(group)
    confidence = (w_len / total) * (agreement / length) * mean_score
    return VotedRead(text=text, confidence=float(min(max(confidence, 0.0), 1.0)), n_reads=len(kept),
                     support=sum(1 for t, _ in kept if t == text))


def evidence_key(read: Read, voted: VotedRead) -> tuple[int, float] | None:
    """How well ``read`` shows ``voted``: (positions agreeing after normalisation, score), larger is
    better; ``None`` when the lengths differ."""
    t = normalise_plate(read.text)
    if len(t) != len(voted.text):
        return None
    return sum(a == b for a, b in zip(t, voted.text)), _unit(read.score)


def evidence_index(reads: Sequence[Read], voted: VotedRead) -> int | None:
    """Index in ``reads`` of the read that best shows ``voted`` (largest :func:`evidence_key`: the
    highest-scoring read equal to ``voted.text``, else the read of the same length agreeing on most
    positions, then the highest score); ``None`` when no read has its length. Ties: the earliest."""
    best: tuple[int, float] | None = None
    best_i: int | None = None
    for i, r in enumerate(reads):
        key = evidence_key(r, voted)
        if key is not None and (best is None or key > best):
            best, best_i = key, i
    return best_i


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
        """Read every image (each (h, w, 3) uint8 BGR), batching same-shaped ones; one
        :class:`Read` per image, in order."""
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


# --------------------------------------------------------------------------- reads in a pipeline
@dataclass(frozen=True)
class ReadRequest:
    """One plate image to read. t_s: input time in seconds; image: (h, w, 3) uint8 BGR, a plate of
    track ``track_id`` at frame ``frame_index``; source: what the image is, ``"enhanced"`` (the
    generator's or the fusion's output) or ``"bicubic"`` (the crop upscaled ×4 bicubically)."""

    track_id: int
    frame_index: int
    t_s: float
    image: np.ndarray
    source: str = "enhanced"


@dataclass(frozen=True)
class TrackRead:
    """The OCR result for one :class:`ReadRequest` (its image kept as the read's evidence)."""

    track_id: int
    frame_index: int
    t_s: float
    read: Read
    image: np.ndarray
    source: str = "enhanced"


class ReadQueue:
    """Runs a :class:`PlateReader` on batches of requests, inline or on one background thread.

    Inline (``background=False``, files): :meth:`submit` reads at once, so every request is read
    and results come back on the same frame. Background (live streams): :meth:`submit` never
    waits: it hands the batch to the OCR thread, or drops it (counted in ``dropped``) when
    ``max_pending`` batches are already waiting, so the frame loop's latency does not depend on
    the OCR's speed; results come back on a later :meth:`poll`. Memory is bounded by
    ``max_pending`` + 2 batches.
    """

    def __init__(self, reader: PlateReader, background: bool = False, max_pending: int = 1) -> None:
        self.reader = reader
        self.background = background
        self.done = 0      # images read
        self.dropped = 0   # images not read because the OCR thread was busy
        self.failed = 0    # images in batches the reader raised on (logged, skipped)
        self.seconds = 0.0  # wall time spent reading (inline: time the frame loop waited for it)
        self._results: deque[TrackRead] = deque()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if background:
            self._jobs: queue.Queue[list[ReadRequest] | None] = queue.Queue(maxsize=max(1, max_pending))
            self._thread = threading.Thread(target=self._loop, name="plate-ocr", daemon=True)
            self._thread.start()

    def submit(self, requests: Sequence[ReadRequest]) -> None:
        if not requests:
            return
        if not self.background:
            self._read(list(requests))
            return
        try:
            self._jobs.put_nowait(list(requests))
        except queue.Full:
            with self._lock:
                self.dropped += len(requests)

    def poll(self) -> list[TrackRead]:
        """Results that arrived since the last poll, in the order they were read."""
        with self._lock:
            out = list(self._results)
            self._results.clear()
        return out

    def close(self, wait_s: float = 5.0) -> list[TrackRead]:
        """Stop the OCR thread, letting it finish the batches already handed over for at most
        ``wait_s`` seconds; returns the results not polled yet."""
        if self._thread is not None:
            deadline = time.monotonic() + wait_s
            while self._thread.is_alive() and time.monotonic() < deadline:
                try:
                    self._jobs.put(None, timeout=0.05)
                    break
                except queue.Full:
                    continue
            self._thread.join(max(0.0, deadline - time.monotonic()))
            self._thread = None
        return self.poll()

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            self._read(job)

    def _read(self, requests: list[ReadRequest]) -> None:
        t0 = time.perf_counter()
        try:
            reads = self.reader.read([r.image for r in requests])
        except Exception as exc:  # one bad batch must not end a run; the reads are just missing
            log.warning("plate OCR failed on %d crops: %s", len(requests), exc)
            with self._lock:
                self.failed += len(requests)
                self.seconds += time.perf_counter() - t0
            return
        with self._lock:
            self.seconds += time.perf_counter() - t0
            for req, rd in zip(requests, reads):
                self._results.append(TrackRead(req.track_id, req.frame_index, req.t_s, rd, req.image, req.source))
            self.done += len(requests)


@dataclass
class Evidence:
    """The read that best shows a track's voted text (see :func:`evidence_key`), and the image it
    was read from ((h, w, 3) uint8 BGR). ``written``: saved to disk since it was chosen."""

    frame_index: int
    read: Read
    image: np.ndarray
    written: bool = False


@dataclass
class _TrackVote:
    reads: deque[Read]
    last_seen: int
    voted: VotedRead | None = None
    evidence: Evidence | None = None


class TrackVotes:
    """Per-track reads, their vote and its evidence, with bounded memory: each track keeps its
    last ``max_reads`` reads (the vote runs over those), and a track not read or seen for
    ``forget_after`` clock ticks (the pipeline uses frames) is forgotten once its evidence is
    written (its result lives on in the pipeline's summary)."""

    def __init__(self, max_reads: int = 64, forget_after: int = 900) -> None:
        self.max_reads = max_reads
        self.forget_after = forget_after
        self._tracks: dict[int, _TrackVote] = {}

    def add(self, result: TrackRead, clock: int) -> VotedRead | None:
        """Count one read and re-vote; returns the track's voted read (``None``: nothing legible yet)."""
        st = self._tracks.get(result.track_id)
        if st is None:
            st = self._tracks[result.track_id] = _TrackVote(deque(maxlen=self.max_reads), clock)
        st.reads.append(result.read)
        st.last_seen = max(st.last_seen, clock)
        st.voted = vote_reads(st.reads)
        if st.voted is None:
            return None
        new_key = evidence_key(result.read, st.voted)
        old_key = evidence_key(st.evidence.read, st.voted) if st.evidence is not None else None
        if new_key is not None and (old_key is None or new_key > old_key):
            st.evidence = Evidence(result.frame_index, result.read, result.image)
        return st.voted

    def voted(self, track_id: int) -> VotedRead | None:
        st = self._tracks.get(track_id)
        return st.voted if st is not None else None

    def evidence(self, track_id: int) -> Evidence | None:
        st = self._tracks.get(track_id)
        return st.evidence if st is not None else None

    def track_ids(self) -> list[int]:
        return list(self._tracks)

    def seen(self, track_ids: Iterable[int], clock: int) -> None:
        """Mark tracks present at ``clock`` and forget the ones gone for longer than ``forget_after``."""
        for tid in track_ids:
            st = self._tracks.get(tid)
            if st is not None:
                st.last_seen = clock
        for tid in [t for t, st in self._tracks.items() if clock - st.last_seen > self.forget_after
                    and (st.evidence is None or st.evidence.written)]:
            del self._tracks[tid]
