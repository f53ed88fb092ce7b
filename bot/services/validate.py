"""Validation of what citizens type during intake: phones, ID numbers, dates, codes.

Pure functions: each returns the normalised value or raises :class:`InvalidInput` naming
the text that explains the problem to the person.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from bot.services.errors import InvalidInput

# Mainland mobile numbers: 11 digits, 1 then 3–9 (工信部 numbering plan).
MOBILE = re.compile(r"1[3-9]\d{9}")
# Landlines: area code 0 + 2–3 digits, then a 7–8 digit number; an extension may follow.
LANDLINE = re.compile(r"0\d{2,3}-?\d{7,8}(?:-\d{1,6})?")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"  # GB 11643-1999: check character for (Σ aᵢ·Wᵢ) mod 11
# 统一社会信用代码 (GB 32100-2015): 18 characters from digits and 31 capital letters.
CREDIT_CODE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

NAME_MAX = 50
TEXT_MIN = 4
TEXT_MAX = 3000  # leaves room for headers in a 4096-character Telegram message


def _fold(text: str) -> str:
    """Full-width digits and letters (common with Chinese input methods) to ASCII."""
    return unicodedata.normalize("NFKC", text).strip()


def parse_phone(text: str) -> str:
    """A Chinese mobile (``1[3-9]`` + 9 digits) or landline (``0851-33221100``) number."""
    raw = re.sub(r"[\s()（）]", "", _fold(text))
    raw = re.sub(r"^(\+?86|0086)(?=1)", "", raw)
    if MOBILE.fullmatch(raw):
        return raw
    if LANDLINE.fullmatch(raw):
        return raw
    raise InvalidInput("invalid.phone")


def parse_id_number(text: str) -> str:
    """An 18-character resident ID number with a valid birth date and check character.

    GB 11643-1999: six digits of region, eight of birth date, three of sequence and a
    check character computed with the weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2, mod 11.
    """
    raw = re.sub(r"\s", "", _fold(text)).upper()
    if not re.fullmatch(r"\d{17}[\dX]", raw):
        raise InvalidInput("invalid.id_format")
    try:
        dt.date(int(raw[6:10]), int(raw[10:12]), int(raw[12:14]))
    except ValueError:
        raise InvalidInput("invalid.id_birth") from None
    total = sum(int(digit) * weight for digit, weight in zip(raw[:17], ID_WEIGHTS, strict=True))
    if ID_CHECK[total % 11] != raw[17]:
        raise InvalidInput("invalid.id_checksum")
    return raw


def mask_id(number: str) -> str:
    """``520402199001010012`` → ``5204**********0012``: enough for staff to match a paper copy,
    not enough to misuse (个人信息保护法 Art 6: collect and show no more than needed)."""
    return f"{number[:4]}{'*' * (len(number) - 8)}{number[-4:]}"


def parse_credit_code(text: str) -> str:
    """An organisation's 统一社会信用代码 (18 characters)."""
    raw = re.sub(r"\s", "", _fold(text)).upper()
    if not CREDIT_CODE.fullmatch(raw):
        raise InvalidInput("invalid.credit_code")
    return raw


def parse_email(text: str) -> str:
    raw = _fold(text)
    if not EMAIL.fullmatch(raw):
        raise InvalidInput("invalid.email")
    return raw


def parse_name(text: str) -> str:
    name = " ".join(_fold(text).split())
    if not name or len(name) > NAME_MAX:
        raise InvalidInput("invalid.name")
    return name


def parse_text(text: str, *, minimum: int = TEXT_MIN, maximum: int = TEXT_MAX) -> str:
    """Free text of a sensible length (a 4096-character message must still fit around it)."""
    value = (text or "").strip()
    if len(value) < minimum:
        raise InvalidInput("invalid.too_short", minimum=minimum)
    if len(value) > maximum:
        raise InvalidInput("invalid.too_long", maximum=maximum)
    return value


_RELATIVE = {"今天": 0, "今日": 0, "昨天": 1, "昨日": 1, "前天": 2, "today": 0, "yesterday": 1}
_FULL = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?")
_MONTH_DAY = re.compile(r"(\d{1,2})\s*[月/-]\s*(\d{1,2})\s*[日号]?")


def parse_date(text: str, today: dt.date) -> dt.date:
    """A past or present date as people write it: ``2026-03-05``, ``2026/3/5``,
    ``2026年3月5日``, ``3月5日`` (the most recent such day), ``昨天``, ``今天``, ``前天``.

    A future date is refused: the date someone learned of a decision cannot lie ahead.
    """
    raw = _fold(text).lower()
    if raw in _RELATIVE:
        return today - dt.timedelta(days=_RELATIVE[raw])
    try:
        if match := _FULL.fullmatch(raw):
            day = dt.date(int(match[1]), int(match[2]), int(match[3]))
        elif match := _MONTH_DAY.fullmatch(raw):
            day = dt.date(today.year, int(match[1]), int(match[2]))
            if day > today:  # "3月5日" said in February means last year's
                day = dt.date(today.year - 1, day.month, day.day)
        else:
            raise InvalidInput("invalid.date")
    except ValueError:
        raise InvalidInput("invalid.date") from None
    if day > today:
        raise InvalidInput("invalid.date_future")
    return day
