"""benchmarks.memory: the long clips it builds are valid video of the asked length."""
from __future__ import annotations

import av

from benchmarks.memory import concat_clips, render_segments


def test_concatenated_clip_has_the_asked_length_and_increasing_timestamps(tmp_path) -> None:
    segments = render_segments(tmp_path / "segs", n=2, seconds=1.0, width=192, height=108, fps=10)
    out = tmp_path / "long.mp4"
    assert concat_clips(segments, out, seconds=3.5) == 35  # 1-s segments cycled: a, b, a, half of b

    with av.open(str(out)) as c:
        time_base = c.streams.video[0].time_base
        pts = [f.pts for f in c.decode(video=0)]
    assert len(pts) == 35
    assert all(b > a for a, b in zip(sorted(pts), sorted(pts)[1:]))  # no duplicated timestamps
    assert max(pts) - min(pts) >= 3.3 / float(time_base)  # spans ~3.5 s
