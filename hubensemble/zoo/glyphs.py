"""Procedural upstream data for the offline zoo: glyphs, shapes and textures with a hierarchy."""

from __future__ import annotations

import functools
import os
import unicodedata

import numpy as np

from hubensemble.text import did_you_mean

# The name written into every zoo module's metadata; change it whenever the images a seed
# produces change, so that zoos built from different data never share a cache folder.
UPSTREAM_NAME = "glyphs-v1"
IMAGE_SIZE = 32
_PROTO = 48  # prototype resolution: glyphs are rendered once at this size, then warped
_FILL = 42   # the longer side of a glyph's ink box inside the prototype

# ------------------------------------------------------------------------------- the hierarchy
#
# Characters that look like a character of another sub-tree once scaled and rotated (Greek
# capital A = Latin A, Cyrillic С = Latin C, lower-case c = upper-case C at another size...)
# are left out, so that no two classes are the same picture.
_LATIN_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LATIN_LOWER = "abdefghijkmnpqrty"  # not c l o s u v w x z (they match upper case or I)
_DIGITS = "0123456789"
_GREEK_UPPER = "ΓΔΘΛΞΠΣΦΨΩ"
_GREEK_LOWER = "αβγδεζηθλμξπρστφχψω"
_CYRILLIC = "БДЖЗИЙЛЦЧШЩЪЫЬЭЮЯ"
_MATH = "+×÷=≠≈≤≥∞∫√∂∇∀∃∅⊂±∝¬→⇒ℵ⊕⊗"

_SHAPES = ("circle", "ellipse", "triangle", "square", "diamond", "rectangle", "pentagon",
           "hexagon", "star", "cross", "ring", "arrow", "crescent", "semicircle", "heart")
_TEXTURES = ("stripes_horizontal", "stripes_vertical", "stripes_diagonal",
             "stripes_antidiagonal", "checkerboard", "dots", "grid", "crosshatch", "waves",
             "zigzag", "concentric", "gradient", "noise", "blobs")

_GLYPH_SETS = {
    "latin_upper": _LATIN_UPPER,
    "latin_lower": _LATIN_LOWER,
    "digits": _DIGITS,
    "greek_upper": _GREEK_UPPER,
    "greek_lower": _GREEK_LOWER,
    "cyrillic": _CYRILLIC,
    "math_symbols": _MATH,
}


def _slug(ch):
    if ch.isascii() and ch.isalnum():
        return ch
    name = unicodedata.name(ch)
    for prefix in ("GREEK CAPITAL LETTER ", "CYRILLIC CAPITAL LETTER "):
        if name.startswith(prefix):
            return name[len(prefix):].capitalize()
    if name.startswith("GREEK SMALL LETTER "):
        return name[len("GREEK SMALL LETTER "):].lower()
    return name.lower().replace(" ", "_").replace("-", "_")


def _build_hierarchy():
    tree = {sub: tuple(f"{sub}/{_slug(ch)}" for ch in chars)
            for sub, chars in _GLYPH_SETS.items()}
    tree["shapes"] = tuple(f"shapes/{s}" for s in _SHAPES)
    tree["textures"] = tuple(f"textures/{t}" for t in _TEXTURES)
    return tree


HIERARCHY: dict[str, tuple[str, ...]] = _build_hierarchy()
CLASS_NAMES: tuple[str, ...] = tuple(c for classes in HIERARCHY.values() for c in classes)
_CLASS_INDEX = {c: i for i, c in enumerate(CLASS_NAMES)}
_CHAR_OF = {f"{sub}/{_slug(ch)}": ch for sub, chars in _GLYPH_SETS.items() for ch in chars}


def hierarchy() -> dict[str, list[str]]:
    """Sub-tree → its leaf classes (every class is in exactly one sub-tree)."""
    return {sub: list(classes) for sub, classes in HIERARCHY.items()}


def class_names() -> list[str]:
    """All leaf classes, in label order (labels index this list)."""
    return list(CLASS_NAMES)


def hierarchy_yaml() -> str:
    """The hierarchy as YAML text (sub-tree: [classes]), as build_zoo writes it."""
    import yaml

    head = (f"# Label hierarchy of the procedural upstream data {UPSTREAM_NAME}: "
            f"sub-tree -> leaf classes.\n")
    return head + yaml.safe_dump(hierarchy(), sort_keys=False, allow_unicode=True, width=100)


# ------------------------------------------------------------------------------- fonts

# Fonts shipped with matplotlib. The Computer Modern fonts use TeX encodings: only their ASCII
# letters and digits are what the code point says (cmmi10 has old-style digits, so letters only).
_UNICODE_FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf",
    "DejaVuSansMono-Oblique.ttf", "DejaVuSansMono-BoldOblique.ttf", "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
)
_ASCII_FONTS = {"cmr10.ttf": "latin_upper latin_lower digits",
                "cmb10.ttf": "latin_upper latin_lower digits",
                "cmss10.ttf": "latin_upper latin_lower digits",
                "cmtt10.ttf": "latin_upper latin_lower digits",
                "cmti10.ttf": "latin_upper latin_lower digits",
                "cmmi10.ttf": "latin_upper latin_lower"}
_BOLD = ("Bold", "Bol.", "BolIta", "cmb10")


def font_dir() -> str:
    """The TrueType fonts shipped inside matplotlib (the glyphs are rendered from them)."""
    from hubensemble.environment import import_matplotlib

    import_matplotlib()  # its folder checked, a MPLBACKEND it does not know left out
    import matplotlib

    return os.path.join(matplotlib.get_data_path(), "fonts", "ttf")


def _mask(font, ch):
    m = font.getmask(ch, mode="L")
    w, h = m.size
    if w == 0 or h == 0:
        return np.zeros((0, 0), np.uint8)
    return np.asarray(m, np.uint8).reshape(h, w)


def _fit(ink, size=_PROTO, fill=_FILL):
    """Crops ink to its bounding box and centres it, longer side = fill, in a size² canvas."""
    from PIL import Image

    ys, xs = np.nonzero(ink > 16)
    ink = ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    h, w = ink.shape
    s = fill / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    img = Image.fromarray(ink).resize((nw, nh), Image.LANCZOS)
    out = np.zeros((size, size), np.uint8)
    y0, x0 = (size - nh) // 2, (size - nw) // 2
    out[y0:y0 + nh, x0:x0 + nw] = np.asarray(img)
    return out


def font_coverage() -> dict[str, list[str]]:
    """Glyph class → the font files that really draw it (not .notdef "tofu", not blank)."""
    from PIL import ImageFont

    root = font_dir()
    cover = {c: [] for c in _CHAR_OF}
    for fname in _UNICODE_FONTS + tuple(_ASCII_FONTS):
        path = os.path.join(root, fname)
        if not os.path.exists(path):
            continue
        font = ImageFont.truetype(path, 64)
        # A code point no font maps: whatever it renders is this font's missing-glyph box.
        tofu = [_mask(font, "\ue000"), _mask(font, "\U0010fffd")]
        allowed = _ASCII_FONTS.get(fname)
        for cls, ch in _CHAR_OF.items():
            if allowed is not None and cls.split("/")[0] not in allowed.split():
                continue
            m = _mask(font, ch)
            if m.size == 0 or int((m > 64).sum()) < 12:
                continue
            if any(m.shape == t.shape and np.array_equal(m, t) for t in tofu):
                continue
            cover[cls].append(fname)
    return cover


# ------------------------------------------------------------------------------- prototypes


def _dilate(img, k):
    from PIL import Image, ImageFilter

    return np.asarray(Image.fromarray(img).filter(ImageFilter.MaxFilter(k)))


def _soften(img):
    # A light blur at prototype resolution is the anti-aliasing filter for the later warp.
    from PIL import Image, ImageFilter

    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(0.7)))


def _glyph_prototypes(cls, fonts):
    from PIL import ImageFont

    out = []
    for fname in fonts:
        font = ImageFont.truetype(os.path.join(font_dir(), fname), 96)
        base = _fit(_mask(font, _CHAR_OF[cls]))
        out.append(base)
        out.append(_dilate(base, 3))  # stroke width: +2 px at prototype size
        if not any(b in fname for b in _BOLD):
            out.append(_dilate(base, 5))
    return [_soften(p) for p in out]


def _polygon(n, r=1.0, rot=-90.0, inner=None):
    pts = []
    for i in range(n * (2 if inner else 1)):
        a = np.deg2rad(rot + i * 360.0 / (n * (2 if inner else 1)))
        rr = inner if (inner and i % 2) else r
        pts.append((rr * np.cos(a), rr * np.sin(a)))
    return pts


def _shape_outline(name, variant):
    """Vector description of a shape: a list of ('poly'|'ellipse'|..., params) in [-1, 1]."""
    v = variant
    if name == "circle":
        return [("ellipse", (1.0, 1.0))]
    if name == "ellipse":
        return [("ellipse", (1.0, (0.45, 0.55, 0.6)[v % 3]))]
    if name == "triangle":
        return [("poly", _polygon(3, rot=-90 + (0, 3, -3)[v % 3]))]
    if name == "square":
        return [("poly", [(-1, -1), (1, -1), (1, 1), (-1, 1)])]
    if name == "diamond":
        return [("poly", [(0, -1), (1, 0), (0, 1), (-1, 0)])]
    if name == "rectangle":
        h = (0.45, 0.5, 0.55)[v % 3]
        return [("poly", [(-1, -h), (1, -h), (1, h), (-1, h)])]
    if name == "pentagon":
        return [("poly", _polygon(5))]
    if name == "hexagon":
        return [("poly", _polygon(6, rot=0))]
    if name == "star":
        return [("poly", _polygon(5, inner=(0.38, 0.45, 0.5)[v % 3]))]
    if name == "cross":
        t = (0.3, 0.35, 0.4)[v % 3]
        return [("poly", [(-t, -1), (t, -1), (t, -t), (1, -t), (1, t), (t, t), (t, 1),
                          (-t, 1), (-t, t), (-1, t), (-1, -t), (-t, -t)])]
    if name == "ring":
        return [("ring", (1.0, (0.5, 0.6, 0.7)[v % 3]))]
    if name == "arrow":
        t, head = (0.22, 0.28, 0.34)[v % 3], 0.1
        return [("poly", [(-1, -t), (head, -t), (head, -0.7), (1, 0), (head, 0.7), (head, t),
                          (-1, t)])]
    if name == "crescent":
        return [("crescent", (0.45, 0.5, 0.55)[v % 3])]
    if name == "semicircle":
        return [("semicircle", None)]
    if name == "heart":
        return [("heart", None)]
    raise KeyError(name)


def _draw_shape(name, variant, style):
    """Renders a shape at 4x prototype size: style 0 filled, 1/2 outlines of two widths."""
    from PIL import Image, ImageDraw

    big = _PROTO * 4
    img = Image.new("L", (big, big), 0)
    d = ImageDraw.Draw(img)
    c = big / 2
    r = big * 0.45
    width = (0, 14, 26)[style]
    fill = 255 if style == 0 else None

    def xy(pts):
        return [(c + x * r, c + y * r) for x, y in pts]

    for kind, p in _shape_outline(name, variant):
        if kind == "poly":
            if fill:
                d.polygon(xy(p), fill=255)
            else:
                d.line(xy(p) + xy(p[:1]), fill=255, width=width, joint="curve")
        elif kind == "ellipse":
            rx, ry = p
            box = (c - rx * r, c - ry * r, c + rx * r, c + ry * r)
            d.ellipse(box, fill=fill, outline=255, width=max(width, 1))
        elif kind == "ring":
            ro, ri = p
            d.ellipse((c - ro * r, c - ro * r, c + ro * r, c + ro * r), fill=255)
            d.ellipse((c - ri * r, c - ri * r, c + ri * r, c + ri * r), fill=0)
        elif kind == "crescent":
            d.ellipse((c - r, c - r, c + r, c + r), fill=255)
            off = p * r
            d.ellipse((c - r + off, c - r * 0.95, c + r + off, c + r * 0.95), fill=0)
        elif kind == "semicircle":
            box = (c - r, c - r * 0.5, c + r, c + r * 1.5)
            if fill:
                d.pieslice(box, 180, 360, fill=255)
            else:
                d.arc(box, 180, 360, fill=255, width=width)
                d.line([(c - r, c + r * 0.5), (c + r, c + r * 0.5)], fill=255, width=width)
        elif kind == "heart":
            t = np.linspace(0, 2 * np.pi, 200)
            x = 16 * np.sin(t) ** 3 / 17
            y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)) / 17
            pts = list(zip(x, y + 0.1))
            if fill:
                d.polygon(xy(pts), fill=255)
            else:
                d.line(xy(pts), fill=255, width=width, joint="curve")
    arr = np.asarray(img)
    return _fit(arr)


def _shape_prototypes(name):
    return [_soften(_draw_shape(name, v, s)) for v in range(3) for s in range(3)]


@functools.lru_cache(maxsize=1)
def prototypes() -> tuple[np.ndarray, np.ndarray]:
    """All glyph and shape prototypes: (uint8 [M, 48, 48], class index [M]); textures have none.

    Rendered once per process (about a second): every font that really has a glyph gives
    prototypes at three stroke widths (bold fonts two).
    """
    cover = font_coverage()
    protos, owners = [], []
    for cls in CLASS_NAMES:
        sub = cls.split("/")[0]
        if sub == "textures":
            continue
        if sub == "shapes":
            made = _shape_prototypes(cls.split("/")[1])
        else:
            if not cover[cls]:
                from hubensemble.errors import DataError

                raise DataError(f"no matplotlib font draws {cls}: the fonts in {font_dir()} "
                                f"are incomplete; reinstall matplotlib")
            made = _glyph_prototypes(cls, cover[cls])
        protos.extend(made)
        owners.extend([_CLASS_INDEX[cls]] * len(made))
    return np.stack(protos), np.asarray(owners, np.int64)


# ------------------------------------------------------------------------------- rendering


def _warp(protos, idx, rng, size):
    """Random affine warp (rotation, scale, shear, translation) of prototypes to size², in [0,1]."""
    n = len(idx)
    theta = np.deg2rad(rng.uniform(-15, 15, n))
    scale = rng.uniform(0.6, 1.0, n)
    aspect = np.exp(rng.uniform(-0.12, 0.12, n))
    shear = rng.uniform(-0.2, 0.2, n)
    room = (1.0 - scale * _FILL / _PROTO) / 2 + 0.04
    tx, ty = (rng.uniform(-1, 1, (2, n)) * room).astype(np.float64)
    cos, sin = np.cos(theta), np.sin(theta)
    # Forward map A = R(theta) @ Shear @ diag(s*aspect, s/aspect); sample with its inverse.
    sx, sy = scale * aspect, scale / aspect
    a11, a12 = cos * sx, (cos * shear - sin) * sy
    a21, a22 = sin * sx, (sin * shear + cos) * sy
    det = a11 * a22 - a12 * a21
    i11, i12, i21, i22 = a22 / det, -a12 / det, -a21 / det, a11 / det
    g = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    # Elastic distortion (Simard et al. 2003): a smooth random displacement field, bilinear
    # from a coarse grid; it bends strokes the way handwriting varies.
    dx, dy = _elastic_field(n, rng, size)
    px = g[None, None, :] - tx[:, None, None].astype(np.float32) + dx
    py = g[None, :, None] - ty[:, None, None].astype(np.float32) + dy
    f = np.float32
    qx = (i11[:, None, None].astype(f) * px + i12[:, None, None].astype(f) * py + 0.5) * _PROTO
    qy = (i21[:, None, None].astype(f) * px + i22[:, None, None].astype(f) * py + 0.5) * _PROTO
    qx -= 0.5
    qy -= 0.5
    x0 = np.floor(qx)
    y0 = np.floor(qy)
    wx = qx - x0
    wy = qy - y0
    x0 = x0.astype(np.int32)
    y0 = y0.astype(np.int32)
    side = _PROTO + 2
    flat = protos.reshape(-1)
    x0 = np.clip(x0 + 1, 0, side - 2)
    y0 = np.clip(y0 + 1, 0, side - 2)
    outside = (qx < -1) | (qx > _PROTO) | (qy < -1) | (qy > _PROTO)
    base = idx.astype(np.int64)[:, None, None] * (side * side) + y0 * side + x0
    v00 = flat[base]
    v01 = flat[base + 1]
    v10 = flat[base + side]
    v11 = flat[base + side + 1]
    top = v00 + (v01.astype(np.float32) - v00) * wx
    bot = v10 + (v11.astype(np.float32) - v10) * wx
    out = (top + (bot - top) * wy) * np.float32(1 / 255)
    out[outside] = 0.0
    return out


def _elastic_field(n, rng, size, grid=5, max_alpha=0.05):
    """Two [n, size, size] displacement maps (fractions of the image side)."""
    alpha = rng.uniform(0, max_alpha, n).astype(np.float32)[None, :, None, None]
    coarse = rng.standard_normal((2, n, grid, grid), dtype=np.float32) * alpha
    t = np.linspace(0, grid - 1, size, dtype=np.float32)
    i0 = np.minimum(np.floor(t).astype(np.int64), grid - 2)
    f = t - i0
    interp = np.zeros((size, grid), np.float32)
    interp[np.arange(size), i0] = 1 - f
    interp[np.arange(size), i0 + 1] = f
    field = np.einsum("yi,cnij,xj->cnyx", interp, coarse, interp, optimize=True)
    return field[0], field[1]


def _textures(kind, n, rng, size):
    """n procedural texture masks of one kind, values in [0, 1]."""
    g = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    yy, xx = np.meshgrid(g, g, indexing="ij")
    xx, yy = xx[None], yy[None]

    def col(a):
        return np.asarray(a, np.float32)[:, None, None]

    jitter = col(np.deg2rad(rng.uniform(-10, 10, n)))
    freq = col(rng.uniform(3.0, 7.0, n))
    phase = col(rng.uniform(0, 2 * np.pi, n))
    duty = col(rng.uniform(-0.3, 0.3, n))

    def along(angle_deg):
        a = np.deg2rad(angle_deg) + jitter
        return xx * np.cos(a) + yy * np.sin(a), -xx * np.sin(a) + yy * np.cos(a)

    def bars(u):
        return (np.sin(2 * np.pi * freq * u + phase) > duty).astype(np.float32)

    if kind.startswith("stripes_"):
        angle = {"horizontal": 90, "vertical": 0, "diagonal": 45,
                 "antidiagonal": 135}[kind.split("_", 1)[1]]
        return bars(along(angle)[0])
    if kind == "checkerboard":
        u, v = along(0)
        return ((np.sin(2 * np.pi * freq * u + phase) > 0)
                ^ (np.sin(2 * np.pi * freq * v + phase) > 0)).astype(np.float32)
    if kind == "dots":
        u, v = along(0)
        r = col(rng.uniform(0.12, 0.3, n))
        du = (freq * u + phase / (2 * np.pi)) % 1.0 - 0.5
        dv = (freq * v) % 1.0 - 0.5
        return (du * du + dv * dv < r * r).astype(np.float32)
    if kind in ("grid", "crosshatch"):
        u, v = along(0 if kind == "grid" else 45)
        w = col(rng.uniform(0.12, 0.25, n))
        lu = ((freq * u + phase / (2 * np.pi)) % 1.0) < w
        lv = ((freq * v) % 1.0) < w
        return (lu | lv).astype(np.float32)
    if kind == "waves":
        u, v = along(rng.choice([0, 90]) + 0.0)
        amp = col(rng.uniform(0.06, 0.12, n))
        wf = col(rng.uniform(1.5, 3.0, n))
        return bars(u + amp * np.sin(2 * np.pi * wf * v))
    if kind == "zigzag":
        u, v = along(rng.choice([0, 90]) + 0.0)
        amp = col(rng.uniform(0.06, 0.12, n))
        wf = col(rng.uniform(1.5, 3.0, n))
        tri = 2 * np.abs((wf * v) % 1.0 - 0.5) - 0.5
        return bars(u + amp * 2 * tri)
    if kind == "concentric":
        cx, cy = col(rng.uniform(-0.2, 0.2, n)), col(rng.uniform(-0.2, 0.2, n))
        r = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        return bars(r)
    if kind == "gradient":
        a = rng.uniform(0, 2 * np.pi, n)
        u = xx * col(np.cos(a)) + yy * col(np.sin(a))
        return np.clip(u * col(rng.uniform(1.0, 1.6, n)) + 0.5, 0, 1).astype(np.float32)
    if kind == "noise":
        return (rng.random((n, size, size), dtype=np.float32) > 0.5).astype(np.float32)
    if kind == "blobs":
        coarse = rng.random((n, size // 8 + 1, size // 8 + 1), dtype=np.float32)
        up = _upsample(coarse, 8, size)
        return (up > col(rng.uniform(0.4, 0.6, n))).astype(np.float32)
    raise KeyError(kind)


def _upsample(x, factor, size):
    """Bilinear upsampling of [n, h, w] by an integer factor, cropped to size²."""
    n, h, w = x.shape
    t = (np.arange(size, dtype=np.float32) + 0.5) / factor - 0.5
    t = np.clip(t, 0, h - 1)
    i0 = np.minimum(np.floor(t).astype(np.int64), h - 2)
    f = t - i0
    rows = x[:, i0] * (1 - f)[None, :, None] + x[:, i0 + 1] * f[None, :, None]
    return rows[:, :, i0] * (1 - f)[None, None, :] + rows[:, :, i0 + 1] * f[None, None, :]


def _blur(masks, sigma):
    """Separable Gaussian blur of [n, H, W] masks (edges replicate)."""
    radius = int(np.ceil(2.5 * sigma))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2).astype(np.float32)
    k /= k.sum()
    p = np.pad(masks, ((0, 0), (radius, radius), (radius, radius)), mode="edge")
    h, w = masks.shape[1:]
    rows = sum(k[i] * p[:, i:i + h, :] for i in range(len(k)))
    return sum(k[i] * rows[:, :, i:i + w] for i in range(len(k)))


def _degrade(m, rng, size, fine):
    """Blur and loss of resolution, each on a random part of the batch; images where ``fine``
    (fine textures, whose pattern a coarse camera averages away) get at most a light blur."""
    n = len(m)
    kind = rng.choice(5, n, p=[0.4, 0.2, 0.15, 0.15, 0.1])
    kind[fine] = np.minimum(kind[fine], 1)
    for k, sigma in ((1, 0.6), (2, 1.0)):
        sel = np.nonzero(kind == k)[0]
        if len(sel):
            m[sel] = _blur(m[sel], sigma)
    for k, factor in ((3, 2), (4, 4)):
        # A low-resolution camera: average over factor² blocks, then bilinear upsampling.
        sel = np.nonzero(kind == k)[0]
        if len(sel):
            small = m[sel].reshape(len(sel), size // factor, factor, size // factor, factor)
            small = small.mean(axis=(2, 4))
            m[sel] = _upsample(np.pad(small, ((0, 0), (0, 1), (0, 1)), mode="edge"),
                               factor, size)
    # Thin strokes lose their peak when blurred; restore full contrast (auto-exposure), so
    # that a degraded glyph is soft, not invisible.
    sel = np.nonzero(kind > 0)[0]
    if len(sel):
        peak = m[sel].max(axis=(1, 2), keepdims=True)
        m[sel] /= np.maximum(peak, 0.05)
    return m


def _colourise(m, rng):
    """mask [n, H, W] → uint8 RGB images: random foreground/background colours and noise."""
    n = len(m)
    fg = rng.random((n, 3), dtype=np.float32)
    bg = rng.random((n, 3), dtype=np.float32)
    grey = rng.random(n) < 0.3
    fg[grey] = fg[grey, :1]
    bg[grey] = bg[grey, :1]
    lum = np.array([0.299, 0.587, 0.114], np.float32)
    # Keep the ink visible: push the two colours apart along luminance when they are close.
    diff = (fg - bg) @ lum
    weak = np.abs(diff) < 0.3
    sign = np.where(diff >= 0, 1.0, -1.0).astype(np.float32)
    shift = (0.3 - np.abs(diff)) * sign * weak
    fg = np.clip(fg + 0.5 * shift[:, None], 0, 1)
    bg = np.clip(bg - 0.5 * shift[:, None], 0, 1)
    fg, bg = _ensure_contrast(fg, bg, lum)
    # Sensor noise, added to the mask so that it scales with the ink's contrast.
    sigma = rng.uniform(0, 0.12, n).astype(np.float32)
    m += rng.standard_normal(m.shape, dtype=np.float32) * sigma[:, None, None]
    img = m[..., None] * ((fg - bg) * np.float32(255))[:, None, None, :]
    img += (bg * np.float32(255) + np.float32(0.5))[:, None, None, :]
    np.clip(img, 0, 255, out=img)
    return img.astype(np.uint8)


def _ensure_contrast(fg, bg, lum):
    # Colours clipped at 0 or 1 may still be close: fall back to black on white or back.
    close = np.abs((fg - bg) @ lum) < 0.2
    dark = (bg @ lum) > 0.5
    fg[close & dark] = 0.0
    fg[close & ~dark] = 1.0
    return fg, bg


@functools.lru_cache(maxsize=1)
def _padded_prototypes():
    # One zero row/column of padding around each prototype makes out-of-range reads zero.
    protos, owners = prototypes()
    return np.pad(protos, ((0, 0), (1, 1), (1, 1))), owners


def _mask_chunk(labels, rng, size):
    protos, owners = _padded_prototypes()
    n = len(labels)
    masks = np.zeros((n, size, size), np.float32)
    texture_base = _CLASS_INDEX[HIERARCHY["textures"][0]]
    is_tex = labels >= texture_base
    # Glyphs and shapes: a random prototype of each label's class, warped.
    sel = np.nonzero(~is_tex)[0]
    if len(sel):
        starts = np.searchsorted(owners, labels[sel], side="left")
        counts = np.searchsorted(owners, labels[sel], side="right") - starts
        pick = starts + (rng.random(len(sel)) * counts).astype(np.int64)
        masks[sel] = _warp(protos, pick, rng, size)
    for cls in np.unique(labels[is_tex]):
        sel = np.nonzero(labels == cls)[0]
        masks[sel] = _textures(CLASS_NAMES[cls].split("/")[1], len(sel), rng, size)
    return _degrade(masks, rng, size, is_tex)


def _labels(n, seed, classes):
    if classes is None:
        pool = np.arange(len(CLASS_NAMES))
    else:
        unknown = [c for c in classes if c not in _CLASS_INDEX]
        if unknown:
            said = ", ".join(repr(c) + did_you_mean(c, CLASS_NAMES) for c in unknown[:5])
            raise KeyError(f"unknown classes {said}; see glyphs.class_names()")
        pool = np.array(sorted(_CLASS_INDEX[c] for c in classes), np.int64)
    labels = np.resize(pool, n).astype(np.int64)
    np.random.default_rng(seed).shuffle(labels)
    return labels


def _chunks(n, seed, chunk):
    """(slice, rng) per chunk, and the seed of the label order, all from one SeedSequence."""
    n_chunks = (n + chunk - 1) // chunk
    children = np.random.SeedSequence([int(seed), 0x9E3779B9]).spawn(n_chunks + 1)
    parts = [(slice(i * chunk, min(n, (i + 1) * chunk)), np.random.default_rng(c))
             for i, c in enumerate(children[1:])]
    return children[0], parts


def generate(n: int, seed: int, *, classes=None, size: int = IMAGE_SIZE,
             chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """n random upstream images (uint8 [n, size, size, 3]) and labels (int64 [n]).

    Labels index ``class_names()``; each class appears n / len(classes) times (±1), in
    random order. ``classes`` restricts the draw to some class names (e.g. one sub-tree).
    The same (n, seed, classes, size) always gives the same images.
    """
    if size % 4:
        raise ValueError(f"size must be a multiple of 4, got {size}")
    order_seed, parts = _chunks(n, seed, chunk)
    labels = _labels(n, order_seed, classes)
    images = np.empty((n, size, size, 3), np.uint8)
    for part, rng in parts:
        images[part] = _colourise(_mask_chunk(labels[part], rng, size), rng)
    return images, labels


def generate_masks(n: int, seed: int, *, classes=None, size: int = IMAGE_SIZE,
                   chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """The ink masks (float32 [n, size, size] in [0, 1]) behind ``generate``'s images, before
    colour and noise: 1 where the glyph, shape or texture is drawn."""
    if size % 4:
        raise ValueError(f"size must be a multiple of 4, got {size}")
    order_seed, parts = _chunks(n, seed, chunk)
    labels = _labels(n, order_seed, classes)
    masks = np.empty((n, size, size), np.float32)
    for part, rng in parts:
        masks[part] = _mask_chunk(labels[part], rng, size)
    return masks, labels


def contact_sheet(images, columns=16):
    """Tiles images [n, H, W, 3] into one uint8 picture (for looking at the data)."""
    n, h, w, _ = images.shape
    rows = (n + columns - 1) // columns
    sheet = np.full((rows * (h + 1), columns * (w + 1), 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, columns)
        sheet[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = im
    return sheet
