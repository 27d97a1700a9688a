"""Tables for an 80-column terminal: one line per row, names keep their end, reasons lose theirs."""

from __future__ import annotations

from rich.console import Console

from flakeguard.cli.tables import Column, fitted_table
from flakeguard.pipeline.report import shorten

COLUMNS = [
    Column("id", "right"),
    Column("test", cut="start"),
    Column("since"),
    Column("by", cut="end"),
    Column("reason", cut="end"),
]
LONG_NAME = "com.example.payments.integration.CheckoutFlowTest › test_refund_after_partial_capture[eur]"
LONG_REASON = "quarantined by hand while the payment sandbox times out; see incident 4711 " * 3


def rendered(rows: list[list[str]], width: int) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    console.print(fitted_table(COLUMNS, rows, width, title="quarantine · acme/app · 2"))
    return console.export_text().splitlines()


def test_at_80_columns_each_row_is_one_line_with_the_end_of_the_name() -> None:
    rows = [
        ["7", LONG_NAME, "2024-07-01", "alice", LONG_REASON],
        ["12", "tests.test_api › test_ok", "2024-07-02", "auto", "flaky on main"],
    ]
    lines = rendered(rows, 80)
    assert max(len(line) for line in lines) <= 80
    body = [line for line in lines if line.startswith("│")]
    assert len(body) == 2  # no row wrapped over several lines
    assert "after_partial_capture[eur] │" in body[0]  # the end of the name; brackets are not markup
    assert "…" in body[0] and "incident 4711" not in body[0]
    assert "tests.test_api › test_ok" in body[1] and "flaky on main" in body[1]


def test_a_wide_terminal_shows_everything() -> None:
    lines = rendered([["7", LONG_NAME, "2024-07-01", "alice", "short reason"]], 200)
    assert any(LONG_NAME in line and "short reason" in line for line in lines)


def test_shorten_keeps_the_most_specific_end() -> None:
    assert shorten("tests.test_module_0 › test_case_000", 30) == "…test_module_0 › test_case_000"
    assert shorten("short", 10) == "short"
