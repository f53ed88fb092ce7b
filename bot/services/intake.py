"""What each path needs from the applicant, asked one field at a time.

domain.md "Application content": a disclosure request (政府信息公开条例 Art 29) needs the
applicant's name, 身份证明, contact, a description of the information, the form wanted and
how to obtain it; a petition (信访工作条例 Art 19) the name, address or contact, the request
and the facts (the citizen's own description); reconsideration guidance needs the act
contested, when the person learned of it (the 60-day window, 行政复议法 Art 20) and who made
it. Anonymous petitions are accepted but carry no reply duty.

:func:`next_field` is the whole questionnaire: given what was collected so far, the next
question, or ``None`` when the application is complete. Handlers ask it, validate the
answer with :func:`parse_answer` and store the result; nothing here knows Telegram.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot.services import validate
from bot.services.errors import InvalidInput
from routing.config import PathCode


class Kind(StrEnum):
    NAME = "name"
    PHONE = "phone"
    ID_NUMBER = "id_number"
    CREDIT_CODE = "credit_code"
    EMAIL = "email"
    TEXT = "text"
    DATE = "date"
    CHOICE = "choice"


# Choices are stored as codes; labels are in config/texts.yaml (choice.<field>.<code>).
REQUESTER_KINDS = (
    # The columns of the annual report table (2021 format): 自然人, then 法人或其他组织.
    "natural_person",
    "business",
    "research",
    "public_interest",
    "legal_service",
    "other",
)
FORMS = ("paper", "electronic", "inspection")  # 纸质 / 电子 / 查阅 (条例 Art 29 (三))
DELIVERY = ("post", "email", "pickup", "online")  # 邮寄 / 电子邮件 / 自行领取 / 在线获取
LITIGATION_STAGES = ("planning", "filed", "judged", "enforcement")


@dataclass(frozen=True)
class FieldSpec:
    """One question: where the answer goes (``applicant`` or ``details``), how it is checked."""

    key: str
    kind: Kind
    target: str = "details"  # "applicant" or "details"
    choices: tuple[str, ...] = ()
    optional: bool = False  # the person may skip it (a button)

    @property
    def prompt(self) -> str:
        """The text key of the question."""
        return f"ask.{self.key}"


NAME = FieldSpec("name", Kind.NAME, "applicant")
CONTACT = FieldSpec("contact", Kind.PHONE, "applicant")
ADDRESS = FieldSpec("address", Kind.TEXT, "applicant")
EMAIL_FIELD = FieldSpec("email", Kind.EMAIL, "applicant")
ID_NUMBER = FieldSpec("id_number", Kind.ID_NUMBER, "applicant")
CREDIT = FieldSpec("credit_code", Kind.CREDIT_CODE, "applicant")
REQUESTER = FieldSpec("requester_kind", Kind.CHOICE, "applicant", REQUESTER_KINDS)

QUESTIONS: Mapping[PathCode, tuple[FieldSpec, ...]] = {
    PathCode.PETITION: (NAME, CONTACT, FieldSpec("request", Kind.TEXT)),
    PathCode.DISCLOSURE: (
        REQUESTER,
        NAME,
        ID_NUMBER,
        CREDIT,
        CONTACT,
        FieldSpec("information", Kind.TEXT),
        FieldSpec("form", Kind.CHOICE, choices=FORMS),
        FieldSpec("delivery", Kind.CHOICE, choices=DELIVERY),
        ADDRESS,
        EMAIL_FIELD,
    ),
    PathCode.RECONSIDERATION: (
        NAME,
        CONTACT,
        FieldSpec("act", Kind.TEXT),
        FieldSpec("body", Kind.TEXT),
        FieldSpec("date_learned", Kind.DATE),
    ),
    PathCode.LITIGATION: (
        NAME,
        CONTACT,
        FieldSpec("stage", Kind.CHOICE, choices=LITIGATION_STAGES),
        FieldSpec("court", Kind.TEXT),
        FieldSpec("date_learned", Kind.DATE, optional=True),
    ),
    PathCode.MEDIATION: (
        NAME,
        CONTACT,
        FieldSpec("other_party", Kind.TEXT),
        FieldSpec("request", Kind.TEXT),
    ),
}


def _applies(spec: FieldSpec, path: PathCode, collected: Mapping[str, Any]) -> bool:
    """Questions that depend on earlier answers."""
    if collected.get("anonymous") and spec.key in {"name", "contact"}:
        return False
    if path is PathCode.DISCLOSURE:
        person = collected.get("requester_kind") == "natural_person"
        if spec.key == "id_number":
            return person  # 身份证明 of a natural person
        if spec.key == "credit_code":
            return not person  # an organisation identifies itself by its credit code
        if spec.key == "address":
            return collected.get("delivery") == "post"
        if spec.key == "email":
            return collected.get("delivery") == "email"
    return True


def next_field(path: PathCode | str, collected: Mapping[str, Any]) -> FieldSpec | None:
    """The next question for ``path`` given the answers so far (keys of ``collected``
    are field keys; a skipped optional field is present with value ``None``)."""
    code = PathCode(path)
    for spec in QUESTIONS[code]:
        if spec.key not in collected and _applies(spec, code, collected):
            return spec
    return None


def parse_answer(spec: FieldSpec, text: str, today: dt.date) -> Any:
    """The validated, normalised answer (a date as ISO string: FSM data is JSON)."""
    if spec.kind is Kind.NAME:
        return validate.parse_name(text)
    if spec.kind is Kind.PHONE:
        return validate.parse_phone(text)
    if spec.kind is Kind.ID_NUMBER:
        return validate.parse_id_number(text)
    if spec.kind is Kind.CREDIT_CODE:
        return validate.parse_credit_code(text)
    if spec.kind is Kind.EMAIL:
        return validate.parse_email(text)
    if spec.kind is Kind.DATE:
        return validate.parse_date(text, today).isoformat()
    if spec.kind is Kind.CHOICE:
        if text in spec.choices:
            return text
        raise InvalidInput("invalid.choice")
    return validate.parse_text(text, minimum=2)


@dataclass(frozen=True)
class AttachmentIn:
    """A photo or document the citizen sent (the file stays on Telegram)."""

    kind: str  # photo, document
    file_id: str
    file_unique_id: str = ""
    file_name: str | None = None
    mime_type: str | None = None
    size: int | None = None
    caption: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_name": self.file_name,
            "mime_type": self.mime_type,
            "size": self.size,
            "caption": self.caption,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AttachmentIn:
        return cls(**{name: data.get(name) for name in cls.__dataclass_fields__})  # type: ignore[arg-type]


@dataclass(frozen=True)
class Intake:
    """A complete application, ready to file.

    ``answers`` holds the collected fields by key (see :data:`QUESTIONS`); ``path_confirmed``
    is True when the citizen confirmed the classifier's path, False when they chose one.
    """

    path: str
    topic: str
    district: str | None
    text: str
    answers: Mapping[str, Any] = field(default_factory=dict)
    anonymous: bool = False
    attachments: tuple[AttachmentIn, ...] = ()
    classification: Mapping[str, Any] = field(default_factory=dict)
    path_confirmed: bool = True

    def split(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(applicant, details) as stored on the case. The ID number is stored masked only:
        staff match it against the ID copy; the full number is not needed again (个人信息
        保护法 Art 6, minimum necessary)."""
        applicant: dict[str, Any] = {}
        details: dict[str, Any] = {}
        targets = {spec.key: spec.target for specs in QUESTIONS.values() for spec in specs}
        for key, value in self.answers.items():
            if value is None or key not in targets:
                continue
            if key == "id_number":
                applicant["id_masked"] = validate.mask_id(str(value))
                continue
            (applicant if targets[key] == "applicant" else details)[key] = value
        return applicant, details
