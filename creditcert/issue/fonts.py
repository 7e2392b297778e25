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
from functools import cache
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

    @property
    def file_stem(self) -> str:
        return f"{self.trimmed_family.replace(' ', '')}-{self.weight}"


# Bold is always the sans face in the stylesheet (a serif bold subset cost 40 KB a report).
FACES = (
    Face("Noto Serif CJK SC", 400),
    Face("Noto Sans CJK SC", 400),
    Face("Noto Sans CJK SC", 700),
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


def _shipped_texts() -> list[Path]:
    return [*sorted(p for p in templates_dir().iterdir() if p.is_file()), default_catalog_path()]


def charset() -> list[int]:
    """The code points every trimmed face keeps (sorted)."""
    points = {p for lo, hi in _RANGES for p in range(lo, hi + 1)}
    for row in range(0xA1, 0xF8):  # GB 2312's two-byte area
        for cell in range(0xA1, 0xFF):
            with contextlib.suppress(UnicodeDecodeError):  # the unassigned cells
                points.add(ord(bytes((row, cell)).decode("gb2312")))
    for path in _shipped_texts():
        points.update(ord(c) for c in path.read_text(encoding="utf-8") if ord(c) >= 0x20)
    return sorted(points)


@cache
def _charset_key() -> str:
    """Names the character set without computing it (that takes 0.1 s): what it is made of."""
    digest = hashlib.sha256(f"gb2312 {_RANGES}".encode())
    for path in _shipped_texts():
        digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Installed:
    file: Path
    index: int
    families: tuple[str, ...]
    weight: int  # fontconfig's scale: 80 regular, 200 bold


@cache
def installed() -> tuple[Installed, ...]:
    """Every face fontconfig knows, listed once per process (one `fc-list`)."""
    fc_list = shutil.which("fc-list")
    if not fc_list:
        return ()
    listed = subprocess.run(
        [fc_list, "--format=%{file}\t%{index}\t%{family}\t%{weight}\n"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    faces = []
    for line in listed.splitlines():
        file, index, families, weight = [*line.split("\t"), "", "", ""][:4]
        if not (index.isdigit() and weight.isdigit()):
            continue  # variable fonts list a weight range; the report's faces are static
        faces.append(
            Installed(Path(file), int(index), tuple(f.strip() for f in families.split(",")),
                      int(weight))
        )  # fmt: skip
    return tuple(faces)


def _source(face: Face) -> Installed | None:
    weight = 200 if face.weight >= 700 else 80
    return next((f for f in installed() if face.family in f.families and f.weight == weight), None)


def trimmed_faces() -> dict[Face, Path]:
    """Each face trimmed, made now if missing; faces that cannot be made are left out (logged)."""
    hb_subset = shutil.which("hb-subset")
    if not hb_subset:
        LOG.warning("hb-subset not found (Debian: libharfbuzz-bin): reports use the full fonts")
        return {}
    made: dict[Face, Path] = {}
    for face in FACES:
        source = _source(face)
        if source is None:
            continue
        stat = source.file.stat()
        digest = hashlib.sha256(
            f"{source.file}|{source.index}|{stat.st_size}|{stat.st_mtime_ns}|{_charset_key()}".encode()
        ).hexdigest()[:16]
        target = cache_dir() / f"{face.file_stem}-{digest}.otf"
        try:
            if not target.exists():
                _trim(hb_subset, source, target)
        except (OSError, subprocess.CalledProcessError) as e:
            LOG.warning("cannot make the trimmed font %s (%s): using the full one", target, e)
            continue
        made[face] = target
    return made


def _trim(hb_subset: str, source: Installed, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    codes = temp_path(target.with_suffix(".codes"))
    scratch = temp_path(target)
    try:
        codes.write_text(",".join(f"{p:X}" for p in charset()))
        subprocess.run(
            [hb_subset, f"--font-file={source.file}", f"--face-index={source.index}",
             f"--unicodes-file={codes}", "--layout-features=*", "--name-IDs=*", "--no-hinting",
             f"--output-file={scratch}"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        os.replace(scratch, target)  # made whole or not at all; concurrent makers agree
        for stale in target.parent.glob(f"{target.name.rsplit('-', 1)[0]}-*.otf"):
            if stale != target:  # made from an older font or character set
                stale.unlink(missing_ok=True)
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
