"""The one text-table renderer (:mod:`bench.textable`)."""

from __future__ import annotations

from bench.textable import render


def test_plain_aligns_numbers_right_and_strips_trailing_blanks() -> None:
    text = render(["name", "KB", "note"], [["a", 1.5, ""], ["longer", 120, "x"]], numeric={1})
    assert text.splitlines() == ["name     KB  note",
                                 "------  ---  ----",
                                 "a       1.5",
                                 "longer  120  x"]


def test_markdown_is_a_padded_pipe_table() -> None:
    text = render(["Metric", "Status"], [["flash_kb", "✓ pass"]], style="markdown")
    assert text.splitlines() == ["| Metric   | Status |",
                                 "|----------|--------|",
                                 "| flash_kb | ✓ pass |"]


def test_without_header_or_rows() -> None:
    assert render(None, [["model", "m.tflite"], ["RAM", "1 B"]]) == "model  m.tflite\nRAM    1 B"
    assert render(["a", "bb"], []) == "a  bb\n-  --"
    assert render(None, []) == ""
