"""What citizens type: phones, ID numbers (GB 11643), dates, and the questionnaire."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.services import Intake, InvalidInput
from bot.services.intake import Kind, next_field, parse_answer
from bot.services.validate import (
    mask_id,
    parse_credit_code,
    parse_date,
    parse_id_number,
    parse_phone,
)

TODAY = dt.date(2026, 3, 2)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("13800138000", "13800138000"),
        ("138 0013 8000", "13800138000"),
        ("+86 19912345678", "19912345678"),
        ("１３８００１３８０００", "13800138000"),  # full-width digits from a Chinese IME
        ("0851-33221100", "0851-33221100"),
        ("010 12345678", "01012345678"),
    ],
)
def test_phone_numbers(typed: str, expected: str) -> None:
    assert parse_phone(typed) == expected


@pytest.mark.parametrize("typed", ["12800138000", "1380013800", "phone", "851-3322110"])
def test_bad_phone_numbers(typed: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_phone(typed)
    assert error.value.key == "invalid.phone"


def test_id_numbers_check_digit_and_birth_date() -> None:
    assert parse_id_number("11010519491231002x") == "11010519491231002X"
    assert parse_id_number(" 440524188001010014 ") == "440524188001010014"
    for typed, key in [
        ("110105194912310021", "invalid.id_checksum"),
        ("110105194913310020", "invalid.id_birth"),
        ("11010519491231002", "invalid.id_format"),
    ]:
        with pytest.raises(InvalidInput) as error:
            parse_id_number(typed)
        assert error.value.key == key
    assert mask_id("11010519491231002X") == "1101**********002X"


def test_credit_code() -> None:
    assert parse_credit_code("91520400MA6DKXXX1A".replace("X", "0")) == "91520400MA6DK0001A"
    with pytest.raises(InvalidInput):
        parse_credit_code("12345")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2026-03-01", dt.date(2026, 3, 1)),
        ("2026/3/1", dt.date(2026, 3, 1)),
        ("2026年2月5日", dt.date(2026, 2, 5)),
        ("2月5号", dt.date(2026, 2, 5)),
        ("12月25日", dt.date(2025, 12, 25)),  # a day not yet reached this year: last year's
        ("昨天", dt.date(2026, 3, 1)),
        ("今天", TODAY),
        ("前天", dt.date(2026, 2, 28)),
    ],
)
def test_dates(typed: str, expected: dt.date) -> None:
    assert parse_date(typed, TODAY) == expected


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("2026-02-30", "invalid.date"),
        ("下周", "invalid.date"),
        ("2026-04-01", "invalid.date_future"),
    ],
)
def test_bad_dates(typed: str, key: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_date(typed, TODAY)
    assert error.value.key == key


def test_disclosure_questions_depend_on_earlier_answers() -> None:
    asked: list[str] = []
    answers: dict[str, object] = {}
    script = {
        "requester_kind": "business",
        "name": "某律所",
        "credit_code": "91520400MA6DK0001A",
        "contact": "13800138000",
        "information": "某文件",
        "form": "paper",
        "delivery": "post",
        "address": "安顺市某路1号",
    }
    while (spec := next_field("disclosure", answers)) is not None:
        asked.append(spec.key)
        answers[spec.key] = script[spec.key]
    # An organisation gives its credit code, not an ID number; post needs an address only.
    assert asked == list(script)


def test_anonymous_petition_skips_name_and_contact() -> None:
    spec = next_field("petition", {"anonymous": True})
    assert spec is not None
    assert spec.key == "request"


def test_optional_litigation_date_and_choices() -> None:
    answers = {"name": "a", "contact": "13800138000", "stage": "filed", "court": "法院"}
    spec = next_field("litigation", answers)
    assert spec is not None
    assert spec.kind is Kind.DATE
    assert spec.optional
    assert next_field("litigation", {**answers, "date_learned": None}) is None
    stage = next_field("litigation", {"name": "a", "contact": "1"})
    assert stage is not None
    assert parse_answer(stage, "judged", TODAY) == "judged"
    with pytest.raises(InvalidInput):
        parse_answer(stage, "whatever", TODAY)


def test_intake_split_keeps_only_the_masked_id() -> None:
    intake = Intake(
        path="disclosure",
        topic="other",
        district=None,
        text="x",
        answers={"name": "张三", "id_number": "11010519491231002X", "form": "paper", "x": 1},
    )
    applicant, details = intake.split()
    assert applicant == {"name": "张三", "id_masked": "1101**********002X"}
    assert details == {"form": "paper"}
