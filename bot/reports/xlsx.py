"""XLSX downloads for the dashboard: the annual disclosure table laid out as the national
format, and any list as a plain sheet. Values, not formulas: a file opened by a program
that does not calculate (or read back by openpyxl) shows the same numbers as Excel does.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import unicodedata
from collections.abc import Iterable, Sequence
from io import BytesIO
from itertools import groupby
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.properties import PageSetupProperties
from openpyxl.worksheet.worksheet import Worksheet

from bot.reports.annual import BUREAU_TZ, COLUMNS, AnnualReport

FONT_NAME = "宋体"  # SimSun: present wherever the bureau's Excel or WPS runs
BODY = Font(name=FONT_NAME, size=11)
BOLD = Font(name=FONT_NAME, size=11, bold=True)
TITLE = Font(name=FONT_NAME, size=16, bold=True)
THIN = Side(style="thin", color="000000")
GRID = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
HEADER_FILL = PatternFill("solid", fgColor="F2F2F2")
CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)

SHEET_NAME_MAX = 31  # Excel's limit
CELL_TEXT_MAX = 32_767  # Excel's limit per cell
_SHEET_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")

ANNUAL_TITLE = "收到和处理政府信息公开申请情况"
IDENTITY_NOTE = "(本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和)"
APPLICANTS = "申请人情况"


def annual_report_xlsx(report: AnnualReport) -> bytes:
    """The table of ``report`` as one sheet: the title, the two header rows with
    申请人情况 and 法人或其他组织 merged over their columns, the rows indented by level
    (headings without numbers, as in the format), 总计 last, and the check underneath."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook has one sheet
    sheet.title = ANNUAL_TITLE
    last = len(COLUMNS) + 1  # column A holds the row labels
    header_top, header_bottom, first_data = 2, 4, 5

    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=last)
    _put(sheet, 1, 1, f"{report.year}年{ANNUAL_TITLE}", TITLE, CENTER)
    sheet.row_dimensions[1].height = 30

    _annual_header(sheet, header_top, header_bottom)
    sheet.row_dimensions[header_top].height = 48

    for offset, row in enumerate(report.rows):
        r = first_data + offset
        label_font = BOLD if row.level == 0 else BODY
        _put(
            sheet,
            r,
            1,
            row.label,
            label_font,
            Alignment(horizontal="left", vertical="center", indent=row.level * 2),
        )
        for c, column in enumerate(COLUMNS, start=2):
            value = None if row.heading else row[column.code]
            font = BOLD if column.code == "total" else BODY
            _put(sheet, r, c, value, font, CENTER)

    notes_row = first_data + len(report.rows) + 1
    for note in _notes(report):
        sheet.merge_cells(start_row=notes_row, start_column=1, end_row=notes_row, end_column=last)
        _put(
            sheet,
            notes_row,
            1,
            note,
            BODY,
            Alignment(horizontal="left", wrap_text=True),
            grid=False,
        )
        notes_row += 1

    # The identity note wraps inside its merged cell; the row labels set the width.
    widest = max(_width(row.label) + 2 * row.level for row in report.rows)
    sheet.column_dimensions["A"].width = min(widest + 4, 60)
    for c in range(2, last + 1):
        sheet.column_dimensions[get_column_letter(c)].width = 14
    sheet.freeze_panes = sheet.cell(first_data, 2)
    _print_setup(sheet, landscape=True, title_rows=f"{header_top}:{header_bottom}")
    return _save(book)


def _annual_header(sheet: Worksheet, top: int, bottom: int) -> None:
    """The label column's cell (the identity note), 申请人情况 over all the columns, then
    each column either alone over two rows or under its group (法人或其他组织) merged
    across the group's columns."""
    last = len(COLUMNS) + 1
    for r in range(top, bottom + 1):
        for c in range(1, last + 1):
            _put(sheet, r, c, None, BOLD, CENTER, fill=HEADER_FILL)
    sheet.merge_cells(start_row=top, start_column=1, end_row=bottom, end_column=1)
    sheet.cell(top, 1).value = IDENTITY_NOTE
    sheet.merge_cells(start_row=top, start_column=2, end_row=top, end_column=last)
    sheet.cell(top, 2).value = APPLICANTS
    c = 2
    for group, members in groupby(COLUMNS, key=lambda column: column.group):
        span = list(members)
        if group is None:
            for column in span:
                sheet.merge_cells(start_row=top + 1, start_column=c, end_row=bottom, end_column=c)
                sheet.cell(top + 1, c).value = column.label
                c += 1
            continue
        sheet.merge_cells(
            start_row=top + 1, start_column=c, end_row=top + 1, end_column=c + len(span) - 1
        )
        sheet.cell(top + 1, c).value = group
        for column in span:
            sheet.cell(bottom, c).value = column.label
            c += 1


def _notes(report: AnnualReport) -> list[str]:
    balance = report.check()
    unbalanced = [c.label for c in COLUMNS if not balance[c.code].balanced]
    notes = [
        "勾稽关系 一+二=三(七)+四："
        + ("各列平衡。" if not unbalanced else "不平衡：" + "、".join(unbalanced) + "。")
    ]
    if report.unknown_requester_kinds:
        notes.append(f"其中 {report.unknown_requester_kinds} 件申请人类型未登记，计入“其他”列。")
    if report.unrecorded_reply_types:
        notes.append(
            f"其中 {report.unrecorded_reply_types} 件答复未登记答复类型，计入“其他处理·其他”。"
        )
    return notes


def rows_xlsx(
    headers: list[str],
    rows: Iterable[Sequence[object]],
    title: str,
    *,
    tz: dt.tzinfo = BUREAU_TZ,
) -> bytes:
    """A list as one sheet: ``title`` over the columns, a bold header row with a filter,
    then one row per item. Aware datetimes are shown in ``tz`` (Excel has no time zones);
    text is kept as text — a name beginning with "=" is not a formula — and characters
    XLSX cannot hold are dropped."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = _sheet_name(title)
    if len(headers) > 1:
        sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(headers))
    _put(sheet, 1, 1, _text(title), TITLE, Alignment(horizontal="left"), grid=False)
    widths = [_width(h) for h in headers]
    for c, header in enumerate(headers, start=1):
        _put(sheet, 2, c, _text(header), BOLD, CENTER, fill=HEADER_FILL)
    r = 2
    for r, item in enumerate(rows, start=3):
        for c, raw in enumerate(item, start=1):
            value, number_format = _cell_value(raw, tz)
            cell = _put(sheet, r, c, value, BODY, Alignment(vertical="top"))
            if isinstance(value, str):
                cell.data_type = "s"  # never a formula, whatever the text begins with
            if number_format:
                cell.number_format = number_format
            if c > len(widths):
                widths.append(0)
            widths[c - 1] = max(widths[c - 1], _width(_shown(value)))
    for c, w in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(c)].width = min(max(w + 2, 8), 60)
    if headers:
        sheet.auto_filter.ref = f"A2:{get_column_letter(len(headers))}{max(r, 2)}"
    sheet.freeze_panes = "A3"
    _print_setup(sheet, landscape=len(headers) > 5, title_rows="2:2")
    return _save(book)


# ------------------------------------------------------------------ helpers


def _put(
    sheet: Worksheet,
    row: int,
    col: int,
    value: Any,
    font: Font,
    alignment: Alignment,
    *,
    fill: PatternFill | None = None,
    grid: bool = True,
) -> Any:
    cell = sheet.cell(row=row, column=col)
    if value is not None:
        cell.value = value
    cell.font = font
    cell.alignment = alignment
    if grid:
        cell.border = GRID
    if fill is not None:
        cell.fill = fill
    return cell


def _text(value: str) -> str:
    cleaned: str = ILLEGAL_CHARACTERS_RE.sub("", value)
    return cleaned[:CELL_TEXT_MAX]


def _cell_value(value: object, tz: dt.tzinfo) -> tuple[Any, str | None]:
    """What openpyxl can store for ``value``, and the number format it wants."""
    if value is None or isinstance(value, bool | int | float | decimal.Decimal):
        return value, None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            value = value.astimezone(tz).replace(tzinfo=None)
        return value, "yyyy-mm-dd hh:mm"
    if isinstance(value, dt.date):
        return value, "yyyy-mm-dd"
    return _text(str(value)), None


def _shown(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return "0000-00-00 00:00"
    if isinstance(value, dt.date):
        return "0000-00-00"
    return "" if value is None else str(value)


def _width(text: str) -> int:
    """Display width in Excel's character units: CJK and full-width characters take two.
    Multi-line text is as wide as its longest line."""
    return max(
        (
            sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)
            for line in text.splitlines() or [""]
        ),
        default=0,
    )


def _sheet_name(title: str) -> str:
    name = _SHEET_NAME_FORBIDDEN.sub(" ", _text(title)).strip().strip("'")
    return name[:SHEET_NAME_MAX] or "Sheet1"


def _print_setup(sheet: Worksheet, *, landscape: bool, title_rows: str) -> None:
    sheet.page_setup.orientation = "landscape" if landscape else "portrait"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    sheet.print_title_rows = title_rows


def _save(book: Workbook) -> bytes:
    buffer = BytesIO()
    book.save(buffer)
    return buffer.getvalue()
