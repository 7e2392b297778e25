"""The trimmed report faces: made once per machine from the installed Noto CJK, reused after."""

import subprocess

import pytest

from creditcert.issue import fonts


@pytest.mark.slow
def test_trimmed_faces_are_made_once_and_keep_gb2312(tmp_path, monkeypatch):
    monkeypatch.setenv("CREDITCERT_FONT_CACHE", str(tmp_path))
    made = fonts.trimmed_faces()
    assert {f.family for f in made} == {"Noto Serif CJK SC", "Noto Sans CJK SC"}
    assert len(made) == 3 and all(p.parent == tmp_path for p in made.values())
    for face, path in made.items():
        scanned = subprocess.run(
            ["fc-scan", "--format=%{family}|%{charset}", str(path)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert face.family in scanned.split("|")[0]
        assert path.stat().st_size < 5_000_000  # the collections are 19-27 MB
    again = fonts.trimmed_faces()
    assert again == made
    assert {p.stat().st_mtime_ns for p in again.values()} == {
        p.stat().st_mtime_ns for p in made.values()
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in made.values())


@pytest.mark.slow
def test_a_face_made_from_another_font_replaces_the_old_one(tmp_path, monkeypatch):
    monkeypatch.setenv("CREDITCERT_FONT_CACHE", str(tmp_path))
    face = fonts.FACES[0]
    old = tmp_path / f"{face.file_stem}-0123456789abcdef.otf"
    old.write_bytes(b"made from an older Noto")
    made = fonts.trimmed_faces()
    assert not old.exists() and made[face].exists()


def test_charset_is_gb2312_and_the_shipped_texts():
    points = set(fonts.charset())
    assert len([p for p in points if 0x4E00 <= p <= 0x9FFF]) >= 6763
    assert {ord(c) for c in "沈阳市公共信用信息中心专项信用报告"} <= points
    assert ord("堃") not in points  # outside GB 2312: printed from the full face


def test_without_hb_subset_the_full_faces_are_used(tmp_path, monkeypatch):
    monkeypatch.setenv("CREDITCERT_FONT_CACHE", str(tmp_path))
    real = fonts.shutil.which
    monkeypatch.setattr(fonts.shutil, "which", lambda n: None if n == "hb-subset" else real(n))
    assert fonts.trimmed_faces() == {}
    assert fonts.font_face_css({}) == ""
    assert not any(tmp_path.iterdir())
