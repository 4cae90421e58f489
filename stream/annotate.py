"""Draw tracks on a frame: box, track id (and the track's plate read), and the enhanced plate as an
inset beside the plate."""
from __future__ import annotations

import functools
import glob

import cv2
import numpy as np

# Fonts with CJK glyphs (Debian fonts-wqy-microhei, see scripts/install-system-deps.sh) for reads
# that OpenCV's Hershey fonts cannot draw, such as the province character of Chinese plates.
_CJK_FONTS = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/**/wqy-microhei.ttc",
              "/usr/share/fonts/**/NotoSansCJK*.ttc")

_PALETTE = [(56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72),
            (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0), (168, 153, 44), (255, 194, 0)]


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A stable BGR colour per track id."""
    return _PALETTE[track_id % len(_PALETTE)]


def place_inset(box: np.ndarray, inset_w: int, inset_h: int, width: int, height: int) -> tuple[int, int]:
    """Top-left corner for an inset beside ``box``: above it if there is room, else below, else
    inside the frame's nearest edge; always fully inside the frame."""
    x1, y1, x2, y2 = (int(v) for v in box)
    x = min(max(0, x1), max(0, width - inset_w))
    y = y1 - inset_h - 4
    if y < 0:
        y = y2 + 4
    y = min(max(0, y), max(0, height - inset_h))
    return x, y


@functools.lru_cache(maxsize=8)
def _cjk_font(px: int):
    """A Pillow font ``px`` tall with CJK glyphs, or None when none is installed."""
    from PIL import ImageFont

    for pattern in _CJK_FONTS:
        for path in sorted(glob.glob(pattern, recursive=True)):
            try:
                return ImageFont.truetype(path, px)
            except OSError:
                continue
    return None


@functools.lru_cache(maxsize=256)
def _text_mask(text: str, px: int) -> tuple[np.ndarray, int, int] | None:
    """``text`` rendered once in a ``px`` font as a coverage mask ((h, w, 1) uint16, 0-255, 255 =
    ink; uint16 so blending needs no conversion per frame) and the mask's offset (x, y) from the
    text origin on its baseline; None when no font can. Labels change rarely (a track's voted
    text), so every frame reuses the rendering: drawing them with Pillow on each frame cost ~9 %
    of the frame loop at 1080p with 2 CJK plates."""
    font = _cjk_font(px)
    if font is None:
        return None
    from PIL import Image, ImageDraw

    x0, y0, x1, y1 = font.getbbox(text, anchor="ls")
    mask = Image.new("L", (max(1, x1 - x0 + 1), max(1, y1 - y0 + 1)), 0)
    ImageDraw.Draw(mask).text((-x0, -y0), text, font=font, fill=255, anchor="ls")
    return np.asarray(mask, np.uint16)[..., None], x0, y0


def _put_unicode(frame: np.ndarray, text: str, x: int, baseline: int, px: int, colour: tuple[int, int, int]) -> bool:
    """Draw ``text`` (any script) with its baseline at ``baseline``; False when no font can."""
    rendered = _text_mask(text, px)
    if rendered is None:
        return False
    mask, x0, y0 = rendered
    h, w = frame.shape[:2]
    left, top = x + x0, baseline + y0
    l, t = max(0, left), max(0, top)
    r, b = min(w, left + mask.shape[1]), min(h, top + mask.shape[0])
    if r <= l or b <= t:
        return True
    m = mask[t - top: b - top, l - left: r - left]
    patch = frame[t:b, l:r].astype(np.uint16)
    ink = np.array(colour, np.uint16)
    frame[t:b, l:r] = ((patch * (255 - m) + ink * m + 127) // 255).astype(np.uint8)
    return True


def label_size(text: str, scale: float, thick: int) -> tuple[int, int]:
    """(width, height) px of a label as :func:`draw_track` draws it."""
    if text.isascii():
        return cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0]
    (_, th), _ = cv2.getTextSize("A", cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    rendered = _text_mask(text, max(8, round(th * 1.4)))
    if rendered is None:
        return cv2.getTextSize(_ascii(text), cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0]
    return rendered[0].shape[1] - 1, th


def _ascii(text: str) -> str:
    return "".join(c if c.isascii() else "?" for c in text)


INSET_STEP = 4  # px


def resize_inset(enhanced: np.ndarray, width: int, height: int) -> np.ndarray:
    """``enhanced`` resized to (height, width, 3): area-averaged when shrinking, cubic when growing."""
    return cv2.resize(enhanced, (width, height),
                      interpolation=cv2.INTER_AREA if height < enhanced.shape[0] else cv2.INTER_CUBIC)


class InsetCache:
    """Resized insets, one per track, reused while the track's enhanced image (the same array
    object) and the inset size stay the same: the enhanced image changes a few times a second
    (``sr_interval_s``) while the frame rate is 25-30, and an area resize of a ×4 crop costs about
    a millisecond per track and frame at 1080p."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[np.ndarray, int, int, np.ndarray]] = {}

    def resized(self, track_id: int, enhanced: np.ndarray, width: int, height: int) -> np.ndarray:
        entry = self._entries.get(track_id)
        if entry is not None and entry[0] is enhanced and entry[1:3] == (width, height):
            return entry[3]
        inset = resize_inset(enhanced, width, height)
        self._entries[track_id] = (enhanced, width, height, inset)  # holding ``enhanced`` keeps its id unique
        return inset

    def keep_only(self, track_ids: set[int]) -> None:
        """Forget the tracks not in ``track_ids`` (bounds the cache by the live tracks)."""
        for tid in [t for t in self._entries if t not in track_ids]:
            del self._entries[tid]


def draw_track(frame: np.ndarray, box: np.ndarray, track_id: int, enhanced: np.ndarray | None,
               label: str = "", inset_height: int | None = None, inset_cache: InsetCache | None = None) -> None:
    """Annotate ``frame`` ((H, W, 3) uint8 BGR) in place: the box (x1 y1 x2 y2 px), "#id label"
    under it (label: the track's plate read; letters outside ASCII need a CJK font, else they
    show as "?"), and ``enhanced`` ((h, w, 3) uint8 BGR) as an inset beside the plate.
    ``inset_height``: px height of the inset (default: 3× the box height in steps of
    :data:`INSET_STEP` px, kept between 40 px and a quarter of the frame); ``inset_cache``: reuse
    this track's resized inset when nothing changed."""
    colour = track_colour(track_id)
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    thick = max(1, round(min(h, w) / 400))
    cv2.rectangle(frame, (x1, y1), (x2, y2), colour, thick, cv2.LINE_AA)
    text = f"#{track_id}" + (f" {label}" if label else "")
    scale = max(0.4, min(h, w) / 1200)
    tw, th = label_size(text, scale, thick)
    ty = y2 + th + 4 if y2 + th + 4 < h else max(th, y1 - 4)
    cv2.rectangle(frame, (x1, ty - th - 3), (x1 + tw + 4, ty + 3), colour, -1)
    if text.isascii() or not _put_unicode(frame, text, x1 + 2, ty, max(8, round(th * 1.4)), (255, 255, 255)):
        cv2.putText(frame, _ascii(text), (x1 + 2, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick,
                    cv2.LINE_AA)
    if enhanced is None or enhanced.size == 0:
        return
    # The automatic height moves in INSET_STEP px steps, so a box that changes by a pixel between
    # frames keeps its inset size and ``inset_cache`` can reuse the resized image.
    ih = inset_height or int(np.clip(INSET_STEP * round(3 * (y2 - y1) / INSET_STEP), 40, h // 4))
    iw = max(1, round(enhanced.shape[1] * ih / enhanced.shape[0]))
    if iw > w // 2:  # very wide plates: cap the inset at half the frame width
        iw, ih = w // 2, max(1, round(enhanced.shape[0] * (w // 2) / enhanced.shape[1]))
    inset = inset_cache.resized(track_id, enhanced, iw, ih) if inset_cache is not None else resize_inset(enhanced, iw, ih)
    ix, iy = place_inset(np.array([x1, y1, x2, y2]), iw, ih, w, h)
    frame[iy : iy + ih, ix : ix + iw] = inset[: h - iy, : w - ix]
    cv2.rectangle(frame, (ix, iy), (ix + iw - 1, iy + ih - 1), colour, thick)


def draw_region(frame: np.ndarray, region: tuple[int, int, int, int]) -> None:
    """Outline the detector's region of interest ``(x, y, w, h)`` px on ``frame`` in place (a light
    line inside a dark one, visible on any background), so whoever watches the video sees where
    plates are searched for."""
    h, w = frame.shape[:2]
    x, y, rw, rh = region
    thick = max(1, round(min(h, w) / 700))
    cv2.rectangle(frame, (x, y), (x + rw - 1, y + rh - 1), (40, 40, 40), thick)
    cv2.rectangle(frame, (x + thick, y + thick), (x + rw - 1 - thick, y + rh - 1 - thick), (230, 230, 230), thick)
