"""Generated documentation stays in step with the code it documents."""

from __future__ import annotations

from pathlib import Path

from domain.reasons import markdown

ROOT = Path(__file__).resolve().parents[1]


def test_reason_code_docs_are_current() -> None:
    doc = (ROOT / "docs" / "reason-codes.md").read_text(encoding="utf-8")
    assert doc == markdown(), "regenerate with: python -m domain.reasons > docs/reason-codes.md"
