"""Docs that cannot drift: reasons, JSON formats and doc links are checked against the code."""

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from creditcert.cli.app import app
from creditcert.errors import Reason

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_every_reason_is_documented_with_its_meaning():
    text = (DOCS / "verify.md").read_text(encoding="utf-8")
    for reason in Reason:
        assert f"| `{reason.value}` | {reason.meaning} |" in text, reason


def test_every_step_id_the_verifier_can_emit_is_documented():
    text = (DOCS / "verify.md").read_text(encoding="utf-8")
    package = ROOT / "creditcert"
    checkers = [*(package / "verify").glob("*.py"), *(package / "trust").glob("*.py")]
    source = "\n".join(p.read_text(encoding="utf-8") for p in checkers)
    steps = set(
        re.findall(
            r'"((?:format|integrity|issuer|consistency|validity|status|scope|agreement|trust)\.[a-z.-]+)"',
            source,
        )
    )
    documented = text.replace("{qr,envelope}", "QR_OR_ENVELOPE")
    for step in sorted(s for s in steps if not s.endswith(".toml")):
        generic = re.sub(r"\b(qr|envelope)\b", "QR_OR_ENVELOPE", step)
        assert f"`{step}`" in text or generic in documented, step


def test_no_docstring_points_to_a_missing_doc():
    for path in (ROOT / "creditcert").rglob("*.py"):
        for ref in re.findall(r"docs/[a-z0-9-]+\.md", path.read_text(encoding="utf-8")):
            assert (ROOT / ref).exists(), (path, ref)


@pytest.mark.slow
def test_every_cli_json_output_carries_a_documented_format(tmp_path, sample_city):
    """Every `--json` output is an object with a `format` marker described in docs/."""
    import json

    docs = "\n".join(p.read_text(encoding="utf-8") for p in DOCS.glob("*.md"))
    home = str(sample_city.home)
    runner = CliRunner()
    commands = [
        ["code", "check", "--json", "91110000600037341L"],
        ["--home", home, "domains", "list", "--json"],
        ["--home", home, "domains", "show", "market-regulation"],
        ["--home", home, "purposes", "list", "--json"],
        ["--home", home, "data", "status", "--json"],
        ["--home", home, "agreement", "list", "--json"],
        ["--home", home, "partner", "list", "--json"],
    ]
    for args in commands:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        body = json.loads(result.stdout)
        assert isinstance(body, dict) and body["format"].startswith("creditcert."), args
        assert f"`{body['format']}`" in docs, body["format"]


def test_every_crash_stage_is_in_the_operations_guide():
    """docs/operations.md lists each stage a writer can be killed at (creditcert/stages.py)."""
    from creditcert.data.index import FILE_STAGES, INDEX_STAGES

    guide = (DOCS / "operations.md").read_text(encoding="utf-8")
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "creditcert").rglob("*.py"))
    # literal names, and the fixed part of names built as f"{command}.staged" and the like
    named = {re.sub(r"^\{[^}]+\}\.", "", s) for s in re.findall(r'reached\(f?"([^"]+)"\)', code)}
    named = {s for s in named if "{" not in s} | set(FILE_STAGES) | set(INDEX_STAGES)
    assert len(named) >= 15
    assert {s for s in named if s not in guide} == set()


@pytest.mark.slow
def test_the_readme_library_examples_run(issued, tmp_path, monkeypatch):
    """README's "As a library" blocks, run as written against a copy of a city with keys (only
    the demo's home, subject and file names are swapped for the test city's)."""
    import shutil

    home = tmp_path / "city"
    shutil.copytree(issued["home"], home)
    busy = issued["busy"][0].document.subject_code
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## As a library") : text.index("## Documentation")]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 2
    code = "\n".join(blocks)
    code = code.replace('"out/demo/shenyang"', repr(str(home))).replace("12210102107416348E", busy)
    code = code.replace('"out/demo/report-with-records.pdf"', 'f"{report.document.number}.pdf"')
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # raise_for_status() passes: accepted
    assert namespace["result"].verdict.accepted
    assert (tmp_path / f"{namespace['report'].document.number}.pdf").exists()
