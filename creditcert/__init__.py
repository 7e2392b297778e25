"""creditcert: the engine a city's credit centre runs for special credit reports (信用代证).

The front door is `City.open(home)`: lookup, issue, verify, revoke (README "As a library").
Results are `Verification` values with a `Verdict` and `Check`s carrying a `Reason`.
Names are imported on first use, so `import creditcert` stays cheap for the CLI.
"""

from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "City": "creditcert.city",
    "Verification": "creditcert.verify.result",
    "Verdict": "creditcert.verify.result",
    "Status": "creditcert.verify.result",
    "Check": "creditcert.verify.result",
    "Reason": "creditcert.errors",
    "CreditcertError": "creditcert.errors",
    "VerificationFailed": "creditcert.errors",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'creditcert' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_PUBLIC[name]), name)
