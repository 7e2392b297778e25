"""The layering rules of the package (docs/architecture in README), checked on the source: every
import, top-level or inside a function, counts."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "creditcert"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def modules(sub: str) -> dict[str, set[str]]:
    return {
        str(p.relative_to(PACKAGE)): imports_of(p) for p in sorted((PACKAGE / sub).rglob("*.py"))
    }


def ours(names: set[str]) -> set[str]:
    return {n for n in names if n.startswith("creditcert.")}


def test_the_model_imports_nothing_of_ours():
    for path, names in modules("model").items():
        assert not {n for n in ours(names) if not n.startswith("creditcert.model")}, path


def test_envelope_imports_only_the_model_and_errors():
    for path, names in modules("envelope").items():
        allowed = ("creditcert.model", "creditcert.errors", "creditcert.envelope")
        assert all(n.startswith(allowed) for n in ours(names)), path


def test_data_never_imports_issue_verify_trust_or_the_city():
    forbidden = ("creditcert.issue", "creditcert.verify", "creditcert.trust", "creditcert.city")
    for path, names in modules("data").items():
        assert not {n for n in names if n.startswith(forbidden)}, path


def test_verify_never_imports_data_or_issue():
    for path, names in modules("verify").items():
        assert not {n for n in names if n.startswith(("creditcert.data", "creditcert.issue"))}, path


def test_trust_uses_only_the_leaf_result_module_of_verify():
    for path, names in modules("trust").items():
        verify = {n for n in names if n.startswith("creditcert.verify")}
        assert verify <= {"creditcert.verify.result"} | {
            f"creditcert.verify.result.{x}" for x in ("Checklist", "Status", "Verification")
        }, path


def test_only_the_cli_imports_typer_and_rich():
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "cli":
            continue
        names = imports_of(path)
        assert not {n for n in names if n.split(".")[0] in ("typer", "rich")}, path


def test_no_module_is_600_lines_or_more():
    for path in PACKAGE.rglob("*.py"):
        assert len(path.read_text(encoding="utf-8").splitlines()) < 600, path


PDF_STACK = (
    "weasyprint",
    "pyhanko",
    "jinja2",
    "qrcode",
    "pypdfium2",
    "zxingcpp",
    "creditcert.issue.render",
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "args", [["--help"], ["code", "check", "91210102MA0000001G"], ["lookup", "--help"]]
)
def test_commands_that_do_not_render_import_nothing_of_the_pdf_stack(args, tmp_path):
    """Cold start: `--help`, `code check` and `lookup` do not pay ~0.8 s for the PDF stack."""
    ran = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "creditcert.cli", *args],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert ran.returncode in (0, 1), ran.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in ran.stderr.splitlines() if "|" in line}
    assert not {m for m in imported if m.startswith(PDF_STACK)}
