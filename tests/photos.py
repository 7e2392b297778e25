"""Photos of a printed report page, made from a rendered page the way a phone spoils it: turned a
few degrees, tilted in perspective, unevenly lit, noisy, out of focus, small and JPEG-compressed.
Seeded, so every run makes the same bytes; the verifier must read the QR on each (test_qr_decoders).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

PAGE_DPI = 300  # the "print" the camera looks at


@dataclass(frozen=True, slots=True)
class Shot:
    """One way of taking the photo; every number is a strength, 0 is none."""

    name: str
    rotate: float = 0.0  # degrees, counter-clockwise
    tilt: float = 0.0  # perspective: the top edge is this fraction of the width narrower
    long_side: int = 2400  # pixels of the photo's longer side
    blur: float = 0.0  # Gaussian radius, in the photo's pixels
    light: float = 0.0  # how much darker the dimmest corner is than the brightest (0-1)
    noise: float = 0.0  # standard deviation of Gaussian noise, in grey levels
    quality: int = 50  # JPEG quality


SHOTS = (
    Shot("turned-3deg", rotate=3.0, quality=50),
    Shot("turned-back-5deg", rotate=-5.0, long_side=2200, quality=40),
    Shot("tilted", tilt=0.08, rotate=1.5, quality=45),
    Shot("blurred", blur=1.2, long_side=2600, quality=45),
    Shot("dim-corner", light=0.55, noise=6.0, quality=40),
    Shot("noisy", noise=14.0, quality=35),
    Shot("small", long_side=1800, quality=50),
    Shot("everything", rotate=-2.5, tilt=0.05, blur=0.8, light=0.4, noise=8.0, quality=30),
)


def _perspective(img: Image.Image, tilt: float) -> Image.Image:
    """The page seen from below: its top edge narrower by `tilt` of the width."""
    w, h = img.size
    inset = tilt * w / 2
    seen = [(inset, 0), (w - inset, 0), (w, h), (0, h)]  # where the page's corners land
    page = [(0, 0), (w, 0), (w, h), (0, h)]
    rows, rhs = [], []
    for (x, y), (u, v) in zip(seen, page, strict=True):  # PIL maps output (x, y) to input (u, v)
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    coeffs = np.linalg.solve(np.array(rows, dtype=float), np.array(rhs, dtype=float))
    return img.transform(
        img.size,
        Image.Transform.PERSPECTIVE,
        tuple(coeffs),
        Image.Resampling.BICUBIC,
        fillcolor=255,
    )


def _light_and_noise(img: Image.Image, shot: Shot, rng: np.random.Generator) -> Image.Image:
    """A light falling off towards one corner, then sensor noise."""
    pixels = np.asarray(img, dtype=np.float32)
    if shot.light:
        h, w = pixels.shape
        ys, xs = np.mgrid[0:h, 0:w]
        corner = rng.integers(0, 4)
        fx = xs / w if corner & 1 else 1 - xs / w
        fy = ys / h if corner & 2 else 1 - ys / h
        pixels = pixels * (1 - shot.light * (fx + fy) / 2)
    if shot.noise:
        pixels = pixels + rng.normal(0, shot.noise, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def photo(page: Image.Image, shot: Shot, *, seed: int = 0) -> bytes:
    """A JPEG of `page` (a grey page rendered at PAGE_DPI) taken as `shot` says."""
    rng = np.random.default_rng([seed, *shot.name.encode()])
    img = page.convert("L")
    if shot.rotate:
        img = img.rotate(shot.rotate, Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    if shot.tilt:
        img = _perspective(img, shot.tilt)
    scale = shot.long_side / max(img.size)
    img = img.resize(
        (round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS
    )
    if shot.blur:
        img = img.filter(ImageFilter.GaussianBlur(shot.blur))
    img = _light_and_noise(img, shot, rng)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=shot.quality)
    return buf.getvalue()
