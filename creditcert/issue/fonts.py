"""The report's typefaces: Noto Serif/Sans CJK SC trimmed to the characters a report needs.

Debian's Noto CJK files are collections of five regional faces with 65,000 glyphs each (19–27 MB).
WeasyPrint reads and subsets the whole collection on every render, and its subsets keep the
original glyph numbering. The Simplified-Chinese face trimmed to GB 2312 (6,763 hanzi and its
symbols), Latin, punctuation and every character of the shipped templates and catalog is 3–4 MB
with its glyphs renumbered: renders are faster and PDFs a third of the size. The full faces stay
behind them in the stylesheet, so a rare character in a name (堃, 喆, 㐂) is still printed, from
the full font.

The trimmed faces are made once per machine with HarfBuzz's `hb-subset` (Debian: libharfbuzz-bin;
0.4 s each, where fontTools takes a minute) into a cache directory, named by a digest of their
sources, so a font update or a new character set makes new ones. `make setup` makes them ahead
(`python -m creditcert.issue.fonts`); a renderer makes any that are missing. Without `hb-subset`
or a writable cache the report is rendered from the full faces, only slower.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from creditcert.files import temp_path
from creditcert.resources import default_catalog_path, templates_dir

LOG = logging.getLogger(__name__)

TRIMMED_SUFFIX = "GB2312"  # appended to the family name the stylesheet asks for


@dataclass(frozen=True, slots=True)
class Face:
    family: str  # the fontconfig family of the full face, as the stylesheet names it
    weight: int

    @property
    def trimmed_family(self) -> str:
        return f"{self.family} {TRIMMED_SUFFIX}"


FACES = tuple(
    Face(family, weight)
    for family in ("Noto Serif CJK SC", "Noto Sans CJK SC")
    for weight in (400, 700)
)
# Latin, general punctuation, CJK symbols and punctuation, full-width forms.
_RANGES = ((0x20, 0x7E), (0xA0, 0x17F), (0x2000, 0x206F), (0x2100, 0x215F), (0x3000, 0x303F),
           (0xFF00, 0xFFEF))  # fmt: skip


def cache_dir() -> Path:
    """$CREDITCERT_FONT_CACHE, else $XDG_CACHE_HOME/creditcert/fonts, else ~/.cache/…"""
    if explicit := os.environ.get("CREDITCERT_FONT_CACHE"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "creditcert" / "fonts"


def charset() -> list[int]:
    """The code points every trimmed face keeps (sorted)."""
    points = {p for lo, hi in _RANGES for p in range(lo, hi + 1)}
    for row in range(0xA1, 0xF8):  # GB 2312's two-byte area
        for cell in range(0xA1, 0xFF):
            with contextlib.suppress(UnicodeDecodeError):  # the unassigned cells
                points.add(ord(bytes((row, cell)).decode("gb2312")))
    shipped = [*sorted(templates_dir().iterdir()), default_catalog_path()]
    for path in shipped:
        if path.is_file():
            points.update(ord(c) for c in path.read_text(encoding="utf-8") if ord(c) >= 0x20)
    return sorted(points)


def _source(face: Face) -> tuple[Path, int] | None:
    """The file and face index fontconfig has for a family and weight."""
    fc_match = shutil.which("fc-match")
    if not fc_match:
        return None
    style = "Bold" if face.weight >= 700 else "Regular"
    found = subprocess.run(
        [fc_match, "--format=%{file}\n%{index}\n%{family}", f"{face.family}:style={style}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split("\n")
    if len(found) < 3 or face.family not in found[2].split(","):
        return None
    return Path(found[0]), int(found[1] or 0)


def trimmed_faces() -> dict[Face, Path]:
    """Each face trimmed, made now if missing; faces that cannot be made are left out (logged)."""
    hb_subset = shutil.which("hb-subset")
    if not hb_subset:
        LOG.warning("hb-subset not found (Debian: libharfbuzz-bin): reports use the full fonts")
        return {}
    points = charset()
    unicodes = ",".join(f"{p:X}" for p in points)
    made: dict[Face, Path] = {}
    for face in FACES:
        source = _source(face)
        if source is None:
            continue
        path, index = source
        stat = path.stat()
        digest = hashlib.sha256(
            f"{path}|{index}|{stat.st_size}|{stat.st_mtime_ns}|{unicodes}".encode()
        ).hexdigest()[:16]
        target = cache_dir() / f"{face.trimmed_family.replace(' ', '')}-{face.weight}-{digest}.otf"
        try:
            if not target.exists():
                _trim(hb_subset, path, index, unicodes, target)
        except (OSError, subprocess.CalledProcessError) as e:
            LOG.warning("cannot make the trimmed font %s (%s): using the full one", target, e)
            continue
        made[face] = target
    return made


def _trim(hb_subset: str, source: Path, index: int, unicodes: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    codes = temp_path(target.with_suffix(".codes"))
    scratch = temp_path(target)
    try:
        codes.write_text(unicodes)
        subprocess.run(
            [hb_subset, f"--font-file={source}", f"--face-index={index}",
             f"--unicodes-file={codes}", "--layout-features=*", "--name-IDs=*", "--no-hinting",
             f"--output-file={scratch}"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        os.replace(scratch, target)  # made whole or not at all; concurrent makers agree
    finally:
        codes.unlink(missing_ok=True)
        scratch.unlink(missing_ok=True)


def font_face_css(faces: dict[Face, Path]) -> str:
    """@font-face rules naming each trimmed face `<family> GB2312`."""
    return "".join(
        f'@font-face {{ font-family: "{face.trimmed_family}"; font-weight: {face.weight}; '
        f'src: url("{path.as_uri()}"); }}\n'
        for face, path in faces.items()
    )


def main() -> None:
    """Make the trimmed faces ahead of the first report (`make setup` runs this)."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for face, path in trimmed_faces().items():
        print(f"{face.trimmed_family} {face.weight}: {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
