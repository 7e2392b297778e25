"""The API reference, made from the service's own OpenAPI document: docs/openapi.json and the
endpoint list in docs/api.md. `python -m creditcert.service.reference` rewrites both; a test
fails when they differ from what the code would write."""

from __future__ import annotations

import json
from pathlib import Path

from creditcert.service.app import routed

DOCS = Path(__file__).resolve().parents[2] / "docs"


def document() -> dict:
    return routed().openapi()


def openapi_json() -> str:
    return json.dumps(document(), ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def markdown() -> str:
    """One section per endpoint: method, path, summary, parameters, body and answers."""
    spec = document()
    lines = [
        "# API reference (`/api/v1`, OpenAPI " + spec["openapi"] + ")",
        "",
        "Generated from the service's OpenAPI document (`docs/openapi.json`, also served at",
        "`/openapi.json` with a browsable page at `/api/docs`) by `python -m",
        "creditcert.service.reference`; a test keeps both current. Errors are RFC 9457 problem",
        "details (`application/problem+json`) with a stable `code` (docs/service.md, Problems).",
        "",
    ]
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            lines += [f"## `{method.upper()} {path}`", "", op.get("summary", ""), ""]
            if op.get("description"):
                lines += [" ".join(op["description"].split()), ""]
            for need in op.get("security", []):
                for scheme, scopes in need.items():
                    lines.append(f"- needs an API token ({scheme}) with the scope `{scopes[0]}`")
            for p in op.get("parameters", []):
                need = "required" if p.get("required") else "optional"
                lines.append(f"- {p['in']} `{p['name']}` ({need})")
            body = op.get("requestBody", {}).get("content", {})
            for media, content in body.items():
                ref = content.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
                lines.append(f"- body `{media}`" + (f": `{ref}`" if ref else ""))
            for status, answer in sorted(op.get("responses", {}).items()):
                media = ", ".join(answer.get("content", {})) or "no body"
                lines.append(f"- **{status}** {answer.get('description', '')} ({media})")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    (DOCS / "openapi.json").write_text(openapi_json(), encoding="utf-8")
    (DOCS / "api.md").write_text(markdown(), encoding="utf-8")


if __name__ == "__main__":
    main()
