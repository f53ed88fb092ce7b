"""Citizens, in their private chat with the bot (Chinese by default; /language toggles).

The flow: /start (privacy notice and menu) → a description (free text at any time, photos
welcome) → "what I understood" (path, unit, what happens next and by when) with 确认 /
换一个类别 → the questions of that path, one at a time, each validated → the receipt,
which the service sends with the tracking number. /status NUMBER and /my look items up;
the buttons under an item withdraw it, give a 补正, rate it or ask for 复查.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandStart, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import repo
from bot.db.records import CaseRecord, PersonRecord
from bot.services import (
    AttachmentIn,
    CaseService,
    CaseStatus,
    Intake,
    ServiceError,
    Understanding,
    refuse,
)
from bot.services import buttons as b
from bot.services.cards import deadline_line, rating_keyboard
from bot.services.intake import FieldSpec, Kind, next_field, parse_answer
from bot.texts import Texts
from handlers.callbacks import Confirm, MyCase, PathPick, Pick, RateCase, RelayTo
from handlers.common import attachment_of, callback_in_private, lang_of, text_of
from handlers.reply import say
from handlers.states import CitizenInput, IntakeForm
from routing.config import PathCode
from routing.lifecycle import State

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")
router.callback_query.filter(callback_in_private)

MENU = ("complain", "disclosure", "mediation", "contest", "lookup", "mine")
# What a menu choice says about the path; "complain" leaves it to the classifier.
MENU_PATH = {
    "disclosure": PathCode.DISCLOSURE,
    "mediation": PathCode.MEDIATION,
    "contest": PathCode.RECONSIDERATION,
}
MAX_ATTACHMENTS = 10


def menu_keyboard(texts: Texts, lang: str) -> ReplyKeyboardMarkup:
    labels = [KeyboardButton(text=texts.get(f"menu.{item}", lang)) for item in MENU]
    return ReplyKeyboardMarkup(
        keyboard=[labels[0:2], labels[2:4], labels[4:6]], resize_keyboard=True
    )


def menu_item(texts: Texts, text: str) -> str | None:
    for item in MENU:
        if text in (texts.get(f"menu.{item}", "zh"), texts.get(f"menu.{item}", "en")):
            return item
    return None


def _inline(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=text, callback_data=data) for text, data in row]
            for row in rows
            if row
        ]
    )


# --------------------------------------------------------------------------- what it cannot read


@router.message(~(F.text | F.photo | F.document))
async def on_unsupported(
    message: Message, session: AsyncSession, actor: PersonRecord, texts: Texts, update_id: int
) -> None:
    """A sticker, a location, a voice message …: refused at any step, and the step stays
    where it was (an intake half done survives a sticker)."""
    refuse("error.unsupported_content")
    await say(
        session,
        message.chat.id,
        texts.get("error.unsupported_content", lang_of(actor)),
        update_id=update_id,
    )


# --------------------------------------------------------------------------- start, language


@router.message(CommandStart())
async def on_start(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    texts: Texts,
    state: FSMContext,
    update_id: int,
) -> None:
    await state.clear()
    lang = lang_of(actor)
    await say(
        session,
        message.chat.id,
        texts.get("citizen.start", lang),
        update_id=update_id,
        keyboard=menu_keyboard(texts, lang),
    )


@router.message(Command("language"))
async def on_language(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    texts: Texts,
    update_id: int,
) -> None:
    lang = "en" if lang_of(actor) == "zh" else "zh"
    await repo.set_language(session, actor.id, lang)
    await say(
        session,
        message.chat.id,
        texts.get("citizen.language_set", lang),
        update_id=update_id,
        keyboard=menu_keyboard(texts, lang),
    )


@router.message(Command("help"))
async def on_help(
    message: Message, session: AsyncSession, actor: PersonRecord, texts: Texts, update_id: int
) -> None:
    await say(
        session, message.chat.id, texts.get("citizen.help", lang_of(actor)), update_id=update_id
    )


@router.message(Command("cancel"))
async def on_cancel(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    texts: Texts,
    state: FSMContext,
    update_id: int,
) -> None:
    await state.clear()
    lang = lang_of(actor)
    await say(
        session,
        message.chat.id,
        texts.get("citizen.cancelled", lang),
        update_id=update_id,
        keyboard=menu_keyboard(texts, lang),
    )


# --------------------------------------------------------------------------- looking up


def _status_text(texts: Texts, services: CaseService, status: CaseStatus, lang: str) -> str:
    case = status.case
    current = status.current
    return texts.get(
        "citizen.status",
        lang,
        number=case.number,
        path=texts.label("path", case.path, lang),
        state=texts.label("state", case.state, lang),
        unit=html.escape(services.unit_name(case.unit_id, lang)),
        received=case.received_at.astimezone(services.tz).date().isoformat(),
        deadline=deadline_line(texts, current, lang) if current else "—",
    )


def _case_buttons(
    texts: Texts, services: CaseService, case: CaseRecord, lang: str
) -> InlineKeyboardMarkup | None:
    row = [
        (texts.get(f"citizen.button.{action}", lang), b.pack(b.MY_CASE, action, case.id))
        for action in services.citizen_actions(case)
    ]
    return _inline([row[:3], row[3:]]) if row else None


@router.message(Command("status"))
async def on_status(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    state: FSMContext,
    update_id: int,
) -> None:
    number = (message.text or "").partition(" ")[2].strip()
    if not number:
        await state.set_state(CitizenInput.lookup)
        await say(
            session,
            message.chat.id,
            texts.get("citizen.ask_number", lang_of(actor)),
            update_id=update_id,
        )
        return
    await _show_status(message, session, actor, services, texts, number, update_id)


async def _show_status(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    number: str,
    update_id: int,
) -> None:
    lang = lang_of(actor)
    try:
        status = await services.case_status(session, actor, number)
    except ServiceError as error:
        refuse(error.key)
        await say(
            session, message.chat.id, texts.get(error.key, lang, **error.fmt), update_id=update_id
        )
        return
    await say(
        session,
        message.chat.id,
        _status_text(texts, services, status, lang),
        update_id=update_id,
        keyboard=_case_buttons(texts, services, status.case, lang),
    )


@router.message(StateFilter(CitizenInput.lookup), F.text)
async def on_lookup_number(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    state: FSMContext,
    update_id: int,
) -> None:
    await state.clear()
    await _show_status(message, session, actor, services, texts, message.text or "", update_id)


@router.message(Command("my"))
async def on_my(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    update_id: int,
) -> None:
    await _show_my(message.chat.id, session, actor, services, texts, update_id)


async def _show_my(
    chat_id: int,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    update_id: int,
) -> None:
    lang = lang_of(actor)
    cases = await services.my_cases(session, actor)
    if not cases:
        await say(session, chat_id, texts.get("citizen.my_empty", lang), update_id=update_id)
        return
    # One message per item, each with its buttons; the ten newest (a chat is not a report).
    for n, case in enumerate(cases[:10]):
        status = await services.own_case(session, actor, case.id)
        await say(
            session,
            chat_id,
            _status_text(texts, services, status, lang),
            update_id=update_id,
            n=n,
            keyboard=_case_buttons(texts, services, case, lang),
        )


# --------------------------------------------------------------------------- buttons under an item


@router.callback_query(MyCase.filter())
async def on_my_case(
    callback: CallbackQuery,
    callback_data: MyCase,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    state: FSMContext,
    now: dt.datetime,
    update_id: int,
) -> None:
    lang = lang_of(actor)
    chat_id = callback.from_user.id
    try:
        status = await services.own_case(session, actor, callback_data.case_id)
        action = callback_data.action
        if action == b.WITHDRAW:
            await services.withdraw(session, actor, status.case.id, now)
        elif action == b.RATE_CASE:
            await say(
                session,
                chat_id,
                texts.get("citizen.rate_prompt", lang, number=status.case.number),
                update_id=update_id,
                keyboard=rating_keyboard(status.case.id),
            )
        elif action in (b.GIVE_SUPPLEMENT, b.MESSAGE, b.REVIEW):
            target = {
                b.GIVE_SUPPLEMENT: CitizenInput.supplement,
                b.MESSAGE: CitizenInput.message,
                b.REVIEW: CitizenInput.review,
            }[action]
            await state.set_state(target)
            await state.update_data(case_id=status.case.id)
            await say(
                session,
                chat_id,
                texts.get(f"citizen.prompt.{action}", lang, number=status.case.number),
                update_id=update_id,
            )
        else:
            await say(
                session,
                chat_id,
                _status_text(texts, services, status, lang),
                update_id=update_id,
                keyboard=_case_buttons(texts, services, status.case, lang),
            )
    except ServiceError as error:
        refuse(error.key)
        await callback.answer(texts.get(error.key, lang, **error.fmt), show_alert=True)
        return
    await callback.answer()


@router.callback_query(RateCase.filter())
async def on_rate(
    callback: CallbackQuery,
    callback_data: RateCase,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    state: FSMContext,
    now: dt.datetime,
    update_id: int,
) -> None:
    lang = lang_of(actor)
    try:
        await services.rate(session, actor, callback_data.case_id, callback_data.score, now)
    except ServiceError as error:
        refuse(error.key)
        await callback.answer(texts.get(error.key, lang, **error.fmt), show_alert=True)
        return
    await callback.answer(texts.get("citizen.rated_short", lang))
    await state.set_state(CitizenInput.rating_comment)
    await state.update_data(case_id=callback_data.case_id)
    await say(
        session,
        actor.telegram_id,
        texts.get("citizen.rating_comment_prompt", lang),
        update_id=update_id,
        n=1,
    )


@router.message(StateFilter(CitizenInput.rating_comment), Command("skip"))
async def on_skip_rating_comment(message: Message, state: FSMContext) -> None:
    await state.clear()


@router.message(StateFilter(CitizenInput.rating_comment), F.text)
async def on_rating_comment(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    state: FSMContext,
    now: dt.datetime,
    update_id: int,
) -> None:
    case_id = (await state.get_data()).get("case_id")
    await state.clear()
    if not isinstance(case_id, int):
        return
    try:
        await services.comment_on_rating(session, actor, case_id, message.text or "", now)
    except ServiceError as error:
        refuse(error.key)
        await say(
            session,
            message.chat.id,
            texts.get(error.key, lang_of(actor), **error.fmt),
            update_id=update_id,
        )


def _collect(message: Message) -> tuple[str, tuple[AttachmentIn, ...]]:
    attachment = attachment_of(message)
    return text_of(message), (attachment,) if attachment else ()


@router.message(StateFilter(CitizenInput.supplement, CitizenInput.message, CitizenInput.review))
async def on_case_input(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    state: FSMContext,
    now: dt.datetime,
    update_id: int,
) -> None:
    lang = lang_of(actor)
    current = await state.get_state()
    data = await state.get_data()
    case_id = int(data["case_id"])
    text, attachments = _collect(message)
    try:
        if current == CitizenInput.supplement.state:
            await services.answer_supplement(session, actor, case_id, text, now, attachments)
            reply = None  # the service confirms, with the restarted period where it applies
        elif current == CitizenInput.message.state:
            await services.relay_to_unit(session, actor, case_id, text, now, attachments)
            reply = "citizen.message_sent"
        else:
            await services.request_review(session, actor, case_id, text, now)
            reply = None
    except ServiceError as error:
        refuse(error.key)
        await say(
            session, message.chat.id, texts.get(error.key, lang, **error.fmt), update_id=update_id
        )
        if error.key.startswith("invalid."):
            return  # let them try again in the same step
        await state.clear()
        return
    await state.clear()
    if reply:
        await say(session, message.chat.id, texts.get(reply, lang), update_id=update_id)


# --------------------------------------------------------------------------- intake


async def _understood(
    chat_id: int,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    state: FSMContext,
    now: dt.datetime,
    update_id: int,
    *,
    path: str | None = None,
) -> None:
    """The confirm screen: path, unit, what happens next and by when."""
    lang = lang_of(actor)
    data = await state.get_data()
    seen = services.understand(data["text"], now=now, path=path or data.get("preset"))
    await state.update_data(understanding=seen.to_dict())
    await state.set_state(IntakeForm.confirm)
    rows: list[list[tuple[str, str]]] = [
        [
            (texts.get("citizen.button.confirm", lang), Confirm(choice="yes").pack()),
            (texts.get("citizen.button.change", lang), Confirm(choice="change").pack()),
        ]
    ]
    # Someone with an open item may simply be adding to it: offer that too.
    if path is None:
        open_cases = [
            c
            for c in await services.my_cases(session, actor)
            if c.state not in (State.CLOSED, State.NOT_ACCEPTED, State.DIVERTED, State.WITHDRAWN)
            and c.state != State.ANSWERED
        ]
        for case in open_cases[:3]:
            rows.append(
                [
                    (
                        texts.get("citizen.button.add_to", lang, number=case.number),
                        RelayTo(case_id=case.id).pack(),
                    )
                ]
            )
    await say(
        session,
        chat_id,
        _understanding_text(texts, services, seen, lang),
        update_id=update_id,
        keyboard=_inline(rows),
    )


def _understanding_text(
    texts: Texts, services: CaseService, seen: Understanding, lang: str
) -> str:
    return texts.get(
        "citizen.understood",
        lang,
        path=texts.label("path", seen.path, lang),
        topic=texts.label("topic", seen.topic, lang),
        unit=html.escape(services.unit_name(seen.unit_id, lang)),
        next=texts.get(f"next.{seen.path}", lang),
        rule=texts.label("rule", seen.rule, lang),
        due=seen.due.isoformat(),
        provisional=texts.get("deadline.provisional", lang) if seen.provisional else "",
    )


async def _start_description(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    state: FSMContext,
    now: dt.datetime,
    update_id: int,
    preset: str | None,
) -> None:
    """A description arrived (with or without a photo): remember it, show what we understood."""
    text = text_of(message)
    attachment = attachment_of(message)
    data = await state.get_data()
    files = list(data.get("attachments", []))
    if attachment and len(files) < MAX_ATTACHMENTS:
        files.append(attachment.to_dict())
    if len(text) < 4:
        # A photo alone, or "你好": ask for words; keep what was sent.
        await state.set_state(IntakeForm.description)
        await state.update_data(attachments=files, preset=preset or data.get("preset"))
        key = "citizen.photo_saved" if attachment else "citizen.describe_more"
        await say(session, message.chat.id, texts.get(key, lang_of(actor)), update_id=update_id)
        return
    await state.update_data(
        text=text[:3000], attachments=files, preset=preset or data.get("preset"), answers={}
    )
    await _understood(message.chat.id, session, actor, services, texts, state, now, update_id)


@router.message(StateFilter(IntakeForm.description, IntakeForm.confirm))
async def on_description(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    state: FSMContext,
    now: dt.datetime,
    update_id: int,
) -> None:
    await _start_description(
        message, session, actor, services, texts, state, now, update_id, preset=None
    )


@router.callback_query(Confirm.filter(), StateFilter(IntakeForm.confirm))
async def on_confirm(
    callback: CallbackQuery,
    callback_data: Confirm,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    state: FSMContext,
    now: dt.datetime,
    update_id: int,
) -> None:
    lang = lang_of(actor)
    chat_id = callback.from_user.id
    if callback_data.choice == "change":
        rows = [
            [(texts.get(f"path.{code.value}", lang), PathPick(path=code.value).pack())]
            for code in PathCode
        ]
        await say(
            session,
            chat_id,
            texts.get("citizen.choose_path", lang),
            update_id=update_id,
            keyboard=_inline(rows),
        )
    else:
        # A path the citizen picked ("换一个类别") stays recorded as their choice.
        data = await state.get_data()
        await state.update_data(path_confirmed=data.get("path_confirmed", True))
        await _ask_next(chat_id, session, actor, services, texts, state, now, update_id)
    await callback.answer()


@router.callback_query(PathPick.filter(), StateFilter(IntakeForm.confirm))
async def on_path_pick(
    callback: CallbackQuery,
    callback_data: PathPick,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    state: FSMContext,
    now: dt.datetime,
    update_id: int,
) -> None:
    if callback_data.path not in set(PathCode):
        refuse("error.bad_button", f"path {callback_data.path!r}")
        await callback.answer(texts.get("error.bad_button", lang_of(actor)))
        return
    await state.update_data(preset=callback_data.path, path_confirmed=False)
    await _understood(
        callback.from_user.id,
        session,
        actor,
        services,
        texts,
        state,
        now,
        update_id,
        path=callback_data.path,
    )
    await callback.answer()


@router.callback_query(RelayTo.filter(), StateFilter(IntakeForm.confirm))
async def on_relay_to(
    callback: CallbackQuery,
    callback_data: RelayTo,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    state: FSMContext,
    now: dt.datetime,
    update_id: int,
) -> None:
    lang = lang_of(actor)
    data = await state.get_data()
    attachments = tuple(AttachmentIn.from_dict(a) for a in data.get("attachments", []))
    try:
        await services.relay_to_unit(
            session, actor, callback_data.case_id, data.get("text", ""), now, attachments
        )
    except ServiceError as error:
        refuse(error.key)
        await callback.answer(texts.get(error.key, lang, **error.fmt), show_alert=True)
        return
    await state.clear()
    await say(
        session,
        callback.from_user.id,
        texts.get("citizen.message_sent", lang),
        update_id=update_id,
    )
    await callback.answer()


def _question_keyboard(
    texts: Texts, spec: FieldSpec, path: str, lang: str
) -> InlineKeyboardMarkup | None:
    rows: list[list[tuple[str, str]]] = []
    if spec.kind is Kind.CHOICE:
        rows += [
            [(texts.get(f"choice.{spec.key}.{code}", lang), Pick(value=code).pack())]
            for code in spec.choices
        ]
    if spec.optional:
        rows.append([(texts.get("citizen.button.skip", lang), Pick(value="skip").pack())])
    if spec.key == "name" and path == PathCode.PETITION:
        # 信访工作条例: anonymous reports are accepted, without a duty to reply.
        rows.append([(texts.get("citizen.button.anonymous", lang), Pick(value="anon").pack())])
    return _inline(rows) if rows else None


async def _ask_next(
    chat_id: int,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    state: FSMContext,
    now: dt.datetime,
    update_id: int,
    n: int = 0,
) -> None:
    """Ask the next question of the path, or file the application when it is complete."""
    lang = lang_of(actor)
    data = await state.get_data()
    seen = Understanding.from_dict(data["understanding"])
    answers: dict[str, Any] = dict(data.get("answers", {}))
    if data.get("anonymous"):
        answers["anonymous"] = True
    spec = next_field(seen.path, answers)
    if spec is None:
        await _file(chat_id, session, actor, services, texts, state, now, update_id, n)
        return
    await state.set_state(IntakeForm.field)
    await state.update_data(field=spec.key)
    await say(
        session,
        chat_id,
        texts.get(spec.prompt, lang),
        update_id=update_id,
        n=n,
        keyboard=_question_keyboard(texts, spec, seen.path, lang),
    )


async def _file(
    chat_id: int,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    state: FSMContext,
    now: dt.datetime,
    update_id: int,
    n: int,
) -> None:
    data = await state.get_data()
    seen = Understanding.from_dict(data["understanding"])
    intake = Intake(
        path=seen.path,
        topic=seen.topic,
        district=seen.district,
        text=data["text"],
        answers=dict(data.get("answers", {})),
        anonymous=bool(data.get("anonymous")),
        attachments=tuple(AttachmentIn.from_dict(a) for a in data.get("attachments", [])),
        classification=seen.to_dict(),
        path_confirmed=bool(data.get("path_confirmed", True)),
    )
    await services.file_case(session, actor, intake, now)
    # The receipt (tracking number, deadline) is the service's message; nothing to add.
    await state.clear()


def _current_spec(data: dict[str, Any]) -> tuple[FieldSpec, str] | None:
    seen = Understanding.from_dict(data["understanding"])
    answers = dict(data.get("answers", {}))
    if data.get("anonymous"):
        answers["anonymous"] = True
    spec = next_field(seen.path, answers)
    if spec is None or spec.key != data.get("field"):
        return None
    return spec, seen.path


@router.message(StateFilter(IntakeForm.field))
async def on_field_answer(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    state: FSMContext,
    now: dt.datetime,
    update_id: int,
) -> None:
    lang = lang_of(actor)
    data = await state.get_data()
    current = _current_spec(data)
    if current is None:  # stale state (e.g. config changed): start the questions again
        await _ask_next(message.chat.id, session, actor, services, texts, state, now, update_id)
        return
    spec, _ = current
    answers = dict(data.get("answers", {}))
    attachment = attachment_of(message)
    if attachment is not None and spec.kind is Kind.ID_NUMBER:
        # 身份证明 may be a photo of the ID (政府信息公开条例 Art 29 (一)).
        files = [*data.get("attachments", []), attachment.to_dict()][:MAX_ATTACHMENTS]
        answers[spec.key] = None
        await state.update_data(answers=answers, attachments=files)
        await _ask_next(message.chat.id, session, actor, services, texts, state, now, update_id)
        return
    if attachment is not None:
        # A photo or file in the middle of the questions is evidence, not the answer: keep
        # it with the item and stay on the same question.
        files = [*data.get("attachments", []), attachment.to_dict()][:MAX_ATTACHMENTS]
        await state.update_data(attachments=files)
        await say(
            session, message.chat.id, texts.get("citizen.file_kept", lang), update_id=update_id
        )
        return
    try:
        value = parse_answer(spec, text_of(message), services.today(now))
    except ServiceError as error:
        refuse(error.key)
        await say(
            session, message.chat.id, texts.get(error.key, lang, **error.fmt), update_id=update_id
        )
        return
    answers[spec.key] = value
    await state.update_data(answers=answers)
    await _ask_next(message.chat.id, session, actor, services, texts, state, now, update_id)


@router.callback_query(Pick.filter(), StateFilter(IntakeForm.field))
async def on_pick(
    callback: CallbackQuery,
    callback_data: Pick,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    state: FSMContext,
    now: dt.datetime,
    update_id: int,
) -> None:
    data = await state.get_data()
    current = _current_spec(data)
    if current is None:
        refuse("error.bad_button", "a pick for no current question")
        await callback.answer(texts.get("error.bad_button", lang_of(actor)))
        return
    spec, path = current
    answers = dict(data.get("answers", {}))
    value = callback_data.value
    if value == "anon" and spec.key == "name" and path == PathCode.PETITION:
        await state.update_data(anonymous=True)
    elif value == "skip" and spec.optional:
        answers[spec.key] = None
    elif spec.kind is Kind.CHOICE and value in spec.choices:
        answers[spec.key] = value
    else:  # an old button from an earlier question
        refuse("error.bad_button", f"pick {value!r} for {spec.key}")
        await callback.answer(texts.get("error.bad_button", lang_of(actor)))
        return
    await state.update_data(answers=answers)
    await _ask_next(callback.from_user.id, session, actor, services, texts, state, now, update_id)
    await callback.answer()


# --------------------------------------------------------------------------- anything else


@router.callback_query()
async def on_stale_button(callback: CallbackQuery, actor: PersonRecord, texts: Texts) -> None:
    """A button from an earlier step (or forged data): stop the spinner, say it expired."""
    refuse("error.bad_button", f"data {callback.data!r}")
    await callback.answer(texts.get("error.bad_button", lang_of(actor)))


@router.message(F.text.startswith("/"))
async def on_unknown_command(
    message: Message, session: AsyncSession, actor: PersonRecord, texts: Texts, update_id: int
) -> None:
    # Someone else's command (a supervisor's, an admin's) or none at all: the help says what
    # a citizen can do.
    refuse("unknown_command", (message.text or "")[:40])
    await say(
        session, message.chat.id, texts.get("citizen.help", lang_of(actor)), update_id=update_id
    )


@router.message(StateFilter(None))
async def on_free_text(
    message: Message,
    session: AsyncSession,
    actor: PersonRecord,
    services: CaseService,
    texts: Texts,
    state: FSMContext,
    now: dt.datetime,
    update_id: int,
) -> None:
    """Free text at any point: a menu button, or a description to understand."""
    lang = lang_of(actor)
    item = menu_item(texts, message.text or "")
    if item == "lookup":
        await state.set_state(CitizenInput.lookup)
        await say(
            session, message.chat.id, texts.get("citizen.ask_number", lang), update_id=update_id
        )
        return
    if item == "mine":
        await _show_my(message.chat.id, session, actor, services, texts, update_id)
        return
    if item is not None:
        await state.set_state(IntakeForm.description)
        await state.update_data(preset=MENU_PATH.get(item), attachments=[], answers={})
        await say(
            session,
            message.chat.id,
            texts.get(f"citizen.describe.{item}", lang),
            update_id=update_id,
        )
        return
    if not text_of(message) and attachment_of(message) is None:
        refuse("empty_text", "only blanks")
        await say(session, message.chat.id, texts.get("citizen.help", lang), update_id=update_id)
        return
    await _start_description(
        message, session, actor, services, texts, state, now, update_id, preset=None
    )
