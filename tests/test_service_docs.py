"""The service's documents cannot drift: the API reference is what the code generates, and
every problem code the service can answer is in docs/service.md's table."""

from __future__ import annotations

import json
import re
from pathlib import Path

from creditcert.service import reference

ROOT = Path(__file__).resolve().parents[1]


def test_the_api_reference_is_what_the_code_generates():
    assert (ROOT / "docs/openapi.json").read_text(encoding="utf-8") == reference.openapi_json(), (
        "run `python -m creditcert.service.reference`"
    )
    assert (ROOT / "docs/api.md").read_text(encoding="utf-8") == reference.markdown()


def test_every_route_that_needs_a_token_says_so_and_errors_are_problems():
    spec = json.loads(reference.openapi_json())
    ops = {(m, p): op for p, ms in spec["paths"].items() for m, op in ms.items()}
    assert ops[("post", "/api/v1/reports")]["security"] == [{"token": ["issue"]}]
    assert ops[("get", "/api/v1/subjects/{code}/lookup")]["security"] == [{"token": ["lookup"]}]
    assert "security" not in ops[("post", "/api/v1/verify")]
    for op in ops.values():
        for status, answer in op["responses"].items():
            if int(status) >= 400:
                assert list(answer["content"]) == ["application/problem+json"]


def test_every_problem_code_is_documented():
    source = "".join(p.read_text() for p in (ROOT / "creditcert/service").glob("*.py"))
    codes = set(re.findall(r"Problem\(\s*[^,()]+,\s*\"([a-z-]+)\"", source))
    codes |= set(re.findall(r"\d{3}: \"([a-z-]+)\"", source))  # HTTP errors by status
    codes |= {"http-error", "too-large"}
    documented = set(
        re.findall(
            r"^\| `([a-z-]+)` \| (?:\d{3}|other) \|", (ROOT / "docs/service.md").read_text(), re.M
        )
    )
    assert len(codes) > 15 and codes == documented
