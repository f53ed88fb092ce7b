"""Reports computed from the cases: the annual disclosure report (2021 format) and the XLSX
files the dashboard offers for download."""

from bot.reports.annual import (
    COLUMNS,
    ROWS,
    AnnualReport,
    Balance,
    Column,
    ReportRow,
    RowSpec,
    annual_report,
    outcome_of,
)
from bot.reports.xlsx import annual_report_xlsx, rows_xlsx

__all__ = [
    "COLUMNS",
    "ROWS",
    "AnnualReport",
    "Balance",
    "Column",
    "ReportRow",
    "RowSpec",
    "annual_report",
    "annual_report_xlsx",
    "outcome_of",
    "rows_xlsx",
]
