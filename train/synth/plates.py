"""Clean, crisp synthetic licence-plate images: the high-resolution ground truth.

Two styles:

* ``"ccpd_blue"``: Chinese blue plate (GA 36 layout, 440 x 140 mm): white province
  character, letter, separator dot and five alphanumerics on blue, white frame line.
  Glyphs come from the WenQuanYi Micro Hei font (Debian ``fonts-wqy-microhei``).
* ``"latin"``: Latin alphanumeric plate in EU / UK / US / generic variants (aspect 2:1 to
  4.7:1), drawn 30 / 15 / 30 / 25 %; ``"latin_eu"``, ``"latin_uk_rear"``, ``"latin_us"`` and
  ``"latin_generic"`` draw one variant only (to weigh a region up in a training mix). Glyphs need
  no system font: OpenCV Hershey fonts or Pillow's built-in Aileron font (Pillow >= 10.1),
  emboldened and condensed to plate-like lettering.

Everything is drawn at a supersampled design resolution and reduced with area
interpolation, so edges are anti-aliased but sharp. Output is deterministic given the
``numpy.random.Generator`` state.
"""
from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sr_model.charset import PROVINCES  # the recognizer's alphabet includes them

STYLES: tuple[str, ...] = ("latin", "ccpd_blue")
_LATIN_VARIANTS = ("eu", "uk_rear", "us", "generic")
# One Latin variant each, for mixes that weigh a region up (SceneConfig.styles, train.detector --styles).
LATIN_VARIANT_STYLES: tuple[str, ...] = tuple(f"latin_{v}" for v in _LATIN_VARIANTS)
ALL_STYLES: tuple[str, ...] = STYLES + LATIN_VARIANT_STYLES
# Chinese plates never use I or O (they read as 1 and 0).
CN_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
# Latin plates here also drop Q, which many registries avoid (reads as O / 0).
LATIN_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
DIGITS = "0123456789"

CJK_FONT_ENV = "LICENSE_ENHANCER_CJK_FONT"
_CJK_FONT_GLOBS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/wqy-microhei*/wqy-microhei.ttc",
    "/usr/share/fonts/**/wqy-microhei.ttc",
    "/usr/local/share/fonts/**/wqy-microhei.ttc",
)
_LATIN_FONTS = ("hershey_simplex", "hershey_duplex", "aileron")


@dataclass
class PlateImage:
    """A rendered plate.

    image: (H, W, 3) uint8 BGR, the whole plate edge to edge (corners outside the rounded
        outline are filled with a dark plate-holder grey).
    text: the characters on the plate, in reading order, no spaces.
    style: ``"latin"`` or ``"ccpd_blue"``.
    mask: (H, W) uint8 coverage of the plate's rounded outline (255 inside), for
        compositing onto other images.
    """

    image: np.ndarray
    text: str
    style: str
    mask: np.ndarray | None = None


# --------------------------------------------------------------------------- fonts
@functools.lru_cache(maxsize=1)
def find_cjk_font() -> str:
    """Path of the WenQuanYi Micro Hei font (``$LICENSE_ENHANCER_CJK_FONT`` overrides).

    Raises FileNotFoundError naming the Debian package when the font is missing.
    """
    env = os.environ.get(CJK_FONT_ENV)
    if env and os.path.isfile(env):
        return env
    for pattern in _CJK_FONT_GLOBS:
        hits = sorted(glob.glob(pattern, recursive=True))
        if hits:
            return hits[0]
    if shutil.which("fc-match"):
        try:
            out = subprocess.run(
                ["fc-match", "-f", "%{file}", "WenQuanYi Micro Hei"],
                capture_output=True, text=True, timeout=10, check=False,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out.lower().endswith("wqy-microhei.ttc") and os.path.isfile(out):
            return out
    raise FileNotFoundError(
        "WenQuanYi Micro Hei font (wqy-microhei.ttc) not found; it renders the Chinese "
        "'ccpd_blue' plates. Install the Debian package 'fonts-wqy-microhei' "
        f"(apt-get install fonts-wqy-microhei) or point ${CJK_FONT_ENV} at the .ttc file."
    )


@functools.lru_cache(maxsize=32)
def _pil_font(key: str, size: int) -> ImageFont.FreeTypeFont:
    if key == "wqy":
        return ImageFont.truetype(find_cjk_font(), size=size)
    if key == "aileron":
        font = ImageFont.load_default(size=size)  # Pillow >= 10.1 embeds Aileron Regular
        if not isinstance(font, ImageFont.FreeTypeFont):
            raise RuntimeError("Pillow built without FreeType: no built-in Aileron font")
        return font
    raise KeyError(key)


@functools.lru_cache(maxsize=1)
def _aileron_available() -> bool:
    try:
        _pil_font("aileron", 32)
        return True
    except (RuntimeError, TypeError, OSError):
        return False


@functools.lru_cache(maxsize=4096)
def _glyph(font_key: str, char: str, size: int) -> np.ndarray:
    """Tight uint8 coverage mask (h, w) of one character rendered about ``size`` px tall."""
    pad = size
    canvas_size = (size * 3, size * 3)  # (w, h)
    if font_key.startswith("hershey"):
        face = cv2.FONT_HERSHEY_SIMPLEX if font_key == "hershey_simplex" else cv2.FONT_HERSHEY_DUPLEX
        canvas = np.zeros((canvas_size[1], canvas_size[0]), np.uint8)
        thick = max(1, round(size * 0.13))  # bold plate-like stroke
        scale = cv2.getFontScaleFromHeight(face, size, thick)
        cv2.putText(canvas, char, (pad, pad + size), face, scale, 255, thick, cv2.LINE_AA)
    else:
        font = _pil_font(font_key, size)
        img = Image.new("L", canvas_size, 0)
        # Aileron is regular weight and WenQuanYi's Latin is light; plates use bold lettering.
        stroke = max(1, round(size * (0.045 if font_key == "aileron" else 0.022)))
        ImageDraw.Draw(img).text((pad, pad), char, font=font, fill=255,
                                 stroke_width=stroke, stroke_fill=255)
        canvas = np.asarray(img)
    ys, xs = np.nonzero(canvas > 8)
    if len(ys) == 0:
        raise ValueError(f"font {font_key!r} has no glyph for {char!r}")
    return np.ascontiguousarray(canvas[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1])


def _draw_glyph(canvas: np.ndarray, mask: np.ndarray, color: tuple[float, float, float],
                x: float, y: float, cell_w: float, cell_h: float) -> None:
    """Blend glyph ``mask`` into float32 ``canvas`` centred in the cell (x, y, cell_w, cell_h).

    The glyph is scaled to the cell height; it keeps its natural width unless that is wider
    than the cell, in which case it is condensed (as plate fonts are).
    """
    gh, gw = mask.shape
    h = max(1, round(cell_h))
    w = max(1, min(round(cell_w), round(gw * h / gh)))
    m = cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    x0 = round(x + (cell_w - w) / 2)
    y0 = round(y + (cell_h - h) / 2)
    H, W = canvas.shape[:2]
    xa, ya, xb, yb = max(0, x0), max(0, y0), min(W, x0 + w), min(H, y0 + h)
    if xb <= xa or yb <= ya:
        return
    a = m[ya - y0: yb - y0, xa - x0: xb - x0, None]
    roi = canvas[ya:yb, xa:xb]
    roi *= 1.0 - a
    roi += a * np.asarray(color, np.float32)


# --------------------------------------------------------------------------- text
_LATIN_PATTERNS: tuple[tuple[str, ...], ...] = (
    ("LL", "DDD", "LL"),    # FR / IT
    ("LLDD", "LLL"),        # UK
    ("LLL", "DDDD"),        # US
    ("D", "LLL", "DDD"),    # US
    ("LL", "DDDD"),
    ("LLL", "DDD"),
    ("LLL", "DD", "L"),
    ("DD", "LLL", "DD"),
    ("L", "DDDD"),
    ("LL", "LL", "DDDD"),
)


def _latin_groups(rng: np.random.Generator) -> list[str]:
    if rng.random() < 0.8:
        pattern = _LATIN_PATTERNS[rng.integers(len(_LATIN_PATTERNS))]
        return ["".join(_pick(rng, LATIN_LETTERS if c == "L" else DIGITS) for c in g) for g in pattern]
    n = int(rng.integers(5, 9))  # free alphanumeric 5..8
    chars = "".join(_pick(rng, LATIN_LETTERS + DIGITS) for _ in range(n))
    cut = int(rng.integers(2, n - 1))
    return [chars[:cut], chars[cut:]]


def _pick(rng: np.random.Generator, alphabet: str) -> str:
    return alphabet[int(rng.integers(len(alphabet)))]


def random_plate_text(rng: np.random.Generator, style: str) -> str:
    """Random plate text for ``style`` (no spaces).

    ccpd_blue: province + letter (no I/O) + 5 of digits/letters (mostly digits, as in CCPD).
    latin: 5..8 characters of A-Z (without I, O, Q) and 0-9 in common national patterns.
    """
    if style == "ccpd_blue":
        return _ccpd_text(rng)
    if style == "latin" or style in LATIN_VARIANT_STYLES:
        return "".join(_latin_groups(rng))
    raise ValueError(f"unknown plate style {style!r}; expected one of {ALL_STYLES}")


def _ccpd_text(rng: np.random.Generator) -> str:
    tail = "".join(_pick(rng, DIGITS) if rng.random() < 0.7 else _pick(rng, CN_LETTERS) for _ in range(5))
    return _pick(rng, PROVINCES) + _pick(rng, CN_LETTERS) + tail


# --------------------------------------------------------------------------- drawing helpers
_SHIFT = 4  # fixed-point bits for sub-pixel cv2 drawing


def _fx(v: float) -> int:
    return int(round(v * (1 << _SHIFT)))


def _rounded_rect_poly(x0: float, y0: float, x1: float, y1: float, r: float) -> np.ndarray:
    """Fixed-point (shift=_SHIFT) int32 polygon of a rounded rectangle."""
    r = max(0.0, min(r, (x1 - x0) / 2, (y1 - y0) / 2))
    pts = []
    for cx, cy, a0 in ((x1 - r, y0 + r, -90), (x1 - r, y1 - r, 0), (x0 + r, y1 - r, 90), (x0 + r, y0 + r, 180)):
        for a in np.deg2rad(np.linspace(a0, a0 + 90, 7)):
            pts.append((_fx(cx + r * np.cos(a)), _fx(cy + r * np.sin(a))))
    return np.asarray(pts, np.int32)


def _fill_poly(img: np.ndarray, poly: np.ndarray, color) -> None:
    cv2.fillPoly(img, [poly], color, cv2.LINE_AA, _SHIFT)


def _jitter(rng: np.random.Generator, bgr: tuple[int, int, int], amount: float = 8.0) -> tuple[float, float, float]:
    return tuple(float(np.clip(c + rng.uniform(-amount, amount), 0, 255)) for c in bgr)


def _out_size(height: int, width: int | None, aspect: float) -> tuple[int, int]:
    """Output (h, w): from ``width`` when given (height follows the aspect), else from ``height``."""
    if width is not None:
        return max(2, round(width / aspect)), max(2, int(width))
    return height, max(2, round(height * aspect))


def _finish(canvas: np.ndarray, mask: np.ndarray, height: int, width: int | None,
            aspect: float) -> tuple[np.ndarray, np.ndarray]:
    """Area-downsample the design canvas to the output size."""
    height, w = _out_size(height, width, aspect)
    img = cv2.resize(np.clip(canvas, 0, 255).astype(np.uint8), (w, height), interpolation=cv2.INTER_AREA)
    m = cv2.resize(mask, (w, height), interpolation=cv2.INTER_AREA)
    return img, m


def _design_height(height: int) -> int:
    # Supersample >= 2x (>= 3x for small plates) so area reduction gives clean anti-aliasing.
    return max(192, 2 * height)


def _base(Hd: int, Wd: int, bg, radius: float, holder=(40, 40, 40)) -> tuple[np.ndarray, np.ndarray]:
    canvas = np.empty((Hd, Wd, 3), np.uint8)
    canvas[:] = holder
    mask = np.zeros((Hd, Wd), np.uint8)
    poly = _rounded_rect_poly(0, 0, Wd - 1, Hd - 1, radius)
    _fill_poly(canvas, poly, bg)
    _fill_poly(mask, poly, 255)
    return canvas, mask


# --------------------------------------------------------------------------- ccpd_blue
def _render_ccpd(rng: np.random.Generator, text: str, height: int, width: int | None) -> PlateImage:
    if len(text) != 7:
        raise ValueError(f"ccpd_blue text must have 7 characters, got {text!r}")
    Hd = _design_height(_out_size(height, width, 440 / 140)[0])
    k = Hd / 140.0  # px per mm; GA 36 blue plate is 440 x 140 mm
    Wd = round(440 * k)
    blue = _jitter(rng, (178, 72, 12), 12)  # BGR of the standard blue
    white = _jitter(rng, (248, 248, 248), 6)
    canvas, mask = _base(Hd, Wd, blue, 8 * k)
    # White frame line ~3 mm inside the edge.
    frame = _rounded_rect_poly(3 * k, 3 * k, Wd - 1 - 3 * k, Hd - 1 - 3 * k, 6 * k)
    cv2.polylines(canvas, [frame], True, white, max(1, round(1.8 * k)), cv2.LINE_AA, _SHIFT)
    f = canvas.astype(np.float32)
    xs = (15.5, 72.5, 151.5, 208.5, 265.5, 322.5, 379.5)  # left edges of the 45 x 90 mm cells
    for i, (ch, x) in enumerate(zip(text, xs)):
        g = _glyph("wqy", ch, _glyph_size(90 * k))
        _draw_glyph(f, g, white, x * k, 25 * k, 45 * k, 90 * k)
    cv2.circle(f, (_fx(134.5 * k), _fx(70 * k)), _fx(5 * k), white, -1, cv2.LINE_AA, _SHIFT)
    img, m = _finish(f, mask, height, width, 440 / 140)
    return PlateImage(img, text, "ccpd_blue", m)


def _glyph_size(cell_h: float) -> int:
    """Power-of-two glyph render size >= the cell height (so glyphs are only ever reduced)."""
    return int(min(1024, max(64, 2 ** int(np.ceil(np.log2(max(cell_h, 1.0)))))))


# --------------------------------------------------------------------------- latin
def _render_latin(rng: np.random.Generator, groups: list[str], height: int, width: int | None,
                  variant: str | None = None) -> PlateImage:
    """variant: one of ``_LATIN_VARIANTS``, or None to draw one (30 / 15 / 30 / 25 %)."""
    if variant is None:
        variant = _LATIN_VARIANTS[int(rng.choice(4, p=[0.3, 0.15, 0.3, 0.25]))]
    font = _LATIN_FONTS[int(rng.integers(len(_LATIN_FONTS)))]
    if font == "aileron" and not _aileron_available():
        font = "hershey_simplex"
    ink = (15, 15, 15)
    band_w = 0.0
    if variant == "eu":
        aspect = 520 / 110
        bg = _jitter(rng, (245, 245, 245), 6)
        char_h, cell_ratio = 0.68, 0.56
        band_w = 0.085 * aspect  # x plate height
    elif variant == "uk_rear":
        aspect = 520 / 111
        bg = _jitter(rng, (20, 205, 250), 8)  # BGR yellow
        char_h, cell_ratio = 0.7, 0.6
    elif variant == "us":
        aspect = float(rng.uniform(1.95, 2.1))
        bg = _jitter(rng, (240, 238, 236), 8)
        ink = [(90, 30, 20), (30, 25, 120), (15, 15, 15), (40, 80, 20)][int(rng.integers(4))]
        char_h, cell_ratio = 0.5, 0.52
    else:
        aspect = float(rng.uniform(2.8, 4.4))
        if rng.random() < 0.2:  # light text on dark plate
            bg, ink = _jitter(rng, (30, 30, 30), 15), (235, 235, 235)
        else:
            bg = [(245, 245, 245), (40, 200, 245), (220, 220, 215)][int(rng.integers(3))]
            bg = _jitter(rng, bg, 8)
        char_h, cell_ratio = float(rng.uniform(0.6, 0.72)), float(rng.uniform(0.5, 0.62))
    Hd = _design_height(_out_size(height, width, aspect)[0])
    Wd = round(Hd * aspect)
    band_w *= Hd
    canvas, mask = _base(Hd, Wd, bg, 0.06 * Hd)
    border = 0.035 * Hd
    if variant in ("eu", "uk_rear") or rng.random() < 0.7:
        poly = _rounded_rect_poly(border, border, Wd - 1 - border, Hd - 1 - border, 0.05 * Hd)
        cv2.polylines(canvas, [poly], True, ink, max(1, round(0.025 * Hd)), cv2.LINE_AA, _SHIFT)
    if variant == "eu":
        x0 = border + 0.02 * Hd
        band = _rounded_rect_poly(x0, x0, x0 + band_w, Hd - 1 - x0, 0.03 * Hd)
        _fill_poly(canvas, band, _jitter(rng, (150, 50, 0), 10))
        # No star ring / country code: OCR would read them as extra characters.
        band_w += x0
    top_shift = 0.0
    if variant == "us":
        stripe = _jitter(rng, [(140, 60, 20), (30, 30, 170), (40, 110, 40)][int(rng.integers(3))], 10)
        cv2.rectangle(canvas, (_fx(0.06 * Hd), _fx(0.07 * Hd)), (_fx(Wd - 0.06 * Hd), _fx(0.17 * Hd)),
                      stripe, -1, cv2.LINE_AA, _SHIFT)
        cv2.rectangle(canvas, (_fx(0.06 * Hd), _fx(0.86 * Hd)), (_fx(Wd - 0.06 * Hd), _fx(0.92 * Hd)),
                      stripe, -1, cv2.LINE_AA, _SHIFT)
        for hx in (0.3 * Wd, 0.7 * Wd):  # mounting holes
            cv2.circle(canvas, (_fx(hx), _fx(0.12 * Hd)), _fx(0.035 * Hd), (60, 60, 60), -1, cv2.LINE_AA, _SHIFT)
        top_shift = 0.04 * Hd
    # Layout: cells of width cell_ratio*char_h, gaps within and between groups; shrink to fit.
    ch = char_h * Hd
    n = sum(len(g) for g in groups)
    gap_in, gap_group = 0.14, 0.5  # in units of the cell width
    avail = Wd - band_w - 2 * (border + 0.05 * Hd)
    units = n + gap_in * (n - len(groups)) + gap_group * (len(groups) - 1)
    cw = min(cell_ratio * ch, avail / units)
    x = band_w + border + 0.05 * Hd + (avail - cw * units) / 2
    y = (Hd - ch) / 2 + top_shift
    f = canvas.astype(np.float32)
    size = _glyph_size(ch)
    for gi, g in enumerate(groups):
        for ci, c in enumerate(g):
            _draw_glyph(f, _glyph(font, c, size), ink, x, y, cw, ch)
            x += cw * (1 + (gap_in if ci < len(g) - 1 else 0))
        x += cw * gap_group
    img, m = _finish(f, mask, height, width, aspect)
    return PlateImage(img, "".join(groups), "latin", m)


# --------------------------------------------------------------------------- public
def render_plate(rng: np.random.Generator, style: str | None = None, height: int = 64,
                 text: str | None = None, width: int | None = None) -> PlateImage:
    """Render one clean plate.

    rng: drives every random choice (text, colours, variant, font), so equal generator
        states give identical plates.
    style: ``"latin"``, ``"ccpd_blue"``, one Latin variant (:data:`LATIN_VARIANT_STYLES`) or None
        for a random one of :data:`STYLES`.
    height: output plate height in px (>= 8); width follows the style's aspect
        (ccpd_blue 440:140, latin 2:1 .. 4.7:1).
    text: optional fixed text (random otherwise). For latin, spaces mark group gaps and
        are dropped from the returned text; ccpd_blue needs exactly 7 characters.
    width: optional output width in px; when given it replaces ``height``, which then
        follows the drawn variant's aspect. Random draws do not depend on the size, so the
        same generator state gives the same plate at any size.
    """
    if (height if width is None else width) < 8:
        raise ValueError("plate size must be >= 8 px")
    if style is None:
        style = STYLES[int(rng.integers(len(STYLES)))]
    if style == "ccpd_blue":
        return _render_ccpd(rng, text if text is not None else _ccpd_text(rng), height, width)
    if style == "latin" or style in LATIN_VARIANT_STYLES:
        groups = text.split() if text is not None else _latin_groups(rng)
        if not groups:
            raise ValueError("empty plate text")
        return _render_latin(rng, groups, height, width, None if style == "latin" else style[len("latin_"):])
    raise ValueError(f"unknown plate style {style!r}; expected one of {ALL_STYLES}")
