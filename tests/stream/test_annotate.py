import numpy as np

from stream.annotate import INSET_STEP, InsetCache, draw_track


def _enhanced(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (64, 192, 3), np.uint8)


def test_inset_cache_draws_what_a_fresh_resize_draws():
    frame_a = np.zeros((360, 640, 3), np.uint8)
    frame_b = frame_a.copy()
    cache = InsetCache()
    enhanced = _enhanced(0)
    box = np.array([300.0, 200.0, 360.0, 215.0])
    draw_track(frame_a, box, 7, enhanced, inset_cache=cache)
    draw_track(frame_a, box + 0.4, 7, enhanced, inset_cache=cache)  # same inset size: reused
    draw_track(frame_b, box, 7, enhanced)
    draw_track(frame_b, box + 0.4, 7, enhanced)
    assert np.array_equal(frame_a, frame_b)


def test_inset_cache_follows_a_new_image_and_a_new_size():
    cache = InsetCache()
    first, second = _enhanced(1), _enhanced(2)
    a = cache.resized(3, first, 90, 30)
    assert cache.resized(3, first, 90, 30) is a
    b = cache.resized(3, second, 90, 30)  # the track's SR output changed
    assert b is not a and not np.array_equal(a, b)
    c = cache.resized(3, second, 120, 40)  # the plate grew
    assert c.shape == (40, 120, 3)
    cache.keep_only({4})
    assert cache.resized(3, second, 120, 40) is not c  # forgotten with its track


def test_automatic_inset_height_moves_in_steps():
    sizes = []

    class Recording(InsetCache):
        def resized(self, track_id, enhanced, width, height):
            sizes.append((width, height))
            return super().resized(track_id, enhanced, width, height)

    cache, enhanced = Recording(), _enhanced(3)
    for box_h in np.linspace(14.0, 18.0, 9):
        frame = np.zeros((720, 1280, 3), np.uint8)
        draw_track(frame, np.array([600.0, 300.0, 660.0, 300.0 + box_h]), 1, enhanced, inset_cache=cache)
    heights = [h for _, h in sizes]
    assert all(h % INSET_STEP == 0 for h in heights) and len(set(heights)) <= 5  # 9 box heights
    assert heights == sorted(heights) and 40 <= heights[0] and heights[-1] <= 56


def test_cjk_label_drawn_from_the_cached_rendering_matches_pillow():
    """CJK plate reads are drawn from a rendering cached per text and size; the pixels are those
    Pillow draws on the frame itself (within rounding), also where the label is cut by the edge."""
    import pytest

    from stream.annotate import _cjk_font, _put_unicode, _text_mask

    if _cjk_font(20) is None:
        pytest.skip("no CJK font installed (Debian: fonts-wqy-microhei)")
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(3)
    text, colour = "#2 吉E6J5K4", (255, 255, 255)
    for x, baseline in [(30, 60), (-15, 12), (600, 90)]:  # inside, cut at the top-left, cut at the right
        frame = rng.integers(0, 256, (120, 640, 3), np.uint8)
        ours = frame.copy()
        assert _put_unicode(ours, text, x, baseline, 20, colour)
        ref = Image.fromarray(np.ascontiguousarray(frame[..., ::-1]))
        ImageDraw.Draw(ref).text((x, baseline), text, font=_cjk_font(20), fill=colour[::-1], anchor="ls")
        ref = np.asarray(ref)[..., ::-1]
        diff = np.abs(ours.astype(int) - ref.astype(int))
        assert diff.max() <= 2 and (ours != frame).any(), diff.max()
    hits = _text_mask.cache_info().hits
    _put_unicode(np.zeros((50, 200, 3), np.uint8), text, 5, 30, 20, colour)
    assert _text_mask.cache_info().hits == hits + 1
