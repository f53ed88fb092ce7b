"""Which unit answers an item, and how it may move between units afterwards.

Routing (domain.md "Routing") reads the ordered rules of ``routing.yaml``: the first rule
whose path, topic and district match decides the unit; ``unit: by_district`` means the
subdivision unit that serves the item's district *and* handles its topic, and when there
is none the rule does not apply. Nothing matched → the fallback unit (兜底): every item
lands somewhere (件件有着落).

After routing, an item has an :class:`Assignment`: the unit working on it now, the unit
that leads (首接负责: the first unit contacted keeps responsibility when several are
involved) and the hops it took. A unit may pass an item on only with a reason — a
:class:`Transfer` to another unit, or a :class:`HandBack` to the fallback unit — and the
number of hops is the measure of 推诿 that supervisors watch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Literal, Protocol

from routing.config import PathCode, RoutingFile, RoutingRule, Topic, UnitsFile, UnitSpec

BY_DISTRICT = "by_district"
"""The ``unit`` of a rule that sends the item to its district's subdivision unit."""

PATH_LABELS: Mapping[PathCode, str] = MappingProxyType(
    {
        PathCode.PETITION: "信访",
        PathCode.LITIGATION: "涉法涉诉",
        PathCode.MEDIATION: "行政调解",
        PathCode.RECONSIDERATION: "行政复议",
        PathCode.DISCLOSURE: "政府信息公开申请",
    }
)

TOPIC_LABELS: Mapping[Topic, str] = MappingProxyType(
    {
        Topic.SOCIAL_ASSISTANCE: "社会救助",
        Topic.ELDERLY_CARE: "养老服务",
        Topic.MARRIAGE_ADOPTION: "婚姻收养登记",
        Topic.FUNERAL: "殡葬",
        Topic.SOCIAL_ORG: "社会组织",
        Topic.CHARITY: "慈善与志愿服务",
        Topic.CHILD_WELFARE: "儿童福利",
        Topic.COMMUNITY: "基层政权和社区治理",
        Topic.PLACE_NAMES: "区划地名",
        Topic.DISABILITY: "残疾人福利",
        Topic.OTHER: "非民政事项",
    }
)


class RoutingError(ValueError):
    """Routing or a hand-over could not be done as asked; the message says why."""


class HandoverError(RoutingError):
    """A transfer or hand-back that the rules do not allow (no reason, to itself …)."""


class UnknownUnit(RoutingError, KeyError):
    """A unit id the organisation does not have."""

    def __init__(self, unit_id: str, data: RoutingData) -> None:
        self.unit_id = unit_id
        known = ", ".join(u.id for u in data.units.units)
        super().__init__(f"没有 id 为 {unit_id!r} 的单位（unknown unit; known: {known}）")

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return str(self.args[0])


class RoutingData(Protocol):
    """What routing reads: the units and the rules. A loaded ``Config`` is one."""

    @property
    def units(self) -> UnitsFile: ...

    @property
    def routing(self) -> RoutingFile: ...


@dataclass(frozen=True)
class RoutingTables:
    """Just the two files routing needs, for callers that have no full ``Config``."""

    units: UnitsFile
    routing: RoutingFile


@dataclass(frozen=True)
class RouteDecision:
    """The unit chosen (its id), which rule chose it and a short Chinese explanation for staff.

    ``rule`` is the 0-based index into ``routing.yaml``'s ``rules`` (the same index a
    config error names, ``rules.4``), or ``"fallback"``; ``note`` is that rule's note.
    """

    unit: str
    rule: int | Literal["fallback"]
    explanation: str
    note: str = ""


def find_unit(data: RoutingData, unit_id: str) -> UnitSpec:
    """The unit with this id; :class:`UnknownUnit` if the organisation has none."""
    for unit in data.units.units:
        if unit.id == unit_id:
            return unit
    raise UnknownUnit(unit_id, data)


def canonical_district(data: RoutingData, district: str | None) -> str | None:
    """The district's exact short name, given its short name, full name or an alias.

    Anything else (a blank, a place this organisation does not know) is ``None``:
    routing then treats the district as unknown rather than losing the item.
    """
    if district is None or not district.strip():
        return None
    wanted = district.strip()
    for known in data.units.districts:
        if wanted == known.name or wanted == known.full_name or wanted in known.aliases:
            return known.name
    return None


def route(
    data: RoutingData, path: PathCode | str, topic: Topic | str, district: str | None
) -> RouteDecision:
    """Choose the unit for an item of this path, topic and district.

    Rules are tried in order (domain.md "Routing"); the first that matches decides. A
    ``by_district`` rule applies only when the district is known and a subdivision unit
    serving it handles the topic (属地管理、分级负责). No rule → the fallback unit.
    """
    path = PathCode(path)
    topic = Topic(topic)
    name = canonical_district(data, district)
    situation = _describe(data, path, topic, name, district)
    for index, rule in enumerate(data.routing.rules):
        if not _matches(rule, path, topic, name):
            continue
        if rule.unit == BY_DISTRICT:
            local = _subdivision_unit(data, name, topic)
            if local is None:
                continue
            unit = local
        else:
            unit = find_unit(data, rule.unit)
        return RouteDecision(
            unit.id, index, f"{situation} → {unit.name}（第{index + 1}条规则）", rule.note
        )
    fallback = find_unit(data, data.routing.fallback)
    return RouteDecision(
        fallback.id, "fallback", f"{situation} → {fallback.name}（无适用规则，兜底）"
    )


def _matches(rule: RoutingRule, path: PathCode, topic: Topic, district: str | None) -> bool:
    if rule.path is not None and path not in rule.path:
        return False
    if rule.topic is not None and topic not in rule.topic:
        return False
    if rule.district is not None and district not in rule.district:
        return False
    return rule.district_known is None or rule.district_known == (district is not None)


def _subdivision_unit(data: RoutingData, district: str | None, topic: Topic) -> UnitSpec | None:
    if district is None:
        return None
    for unit in data.units.units:
        if unit.kind == "subdivision" and district in unit.districts and topic in unit.topics:
            return unit
    return None


def _describe(
    data: RoutingData, path: PathCode, topic: Topic, district: str | None, given: str | None
) -> str:
    kind = data.units.organisation.subdivision_kind  # 县区, 街道/镇 …
    if district is not None:
        place = district
    elif given is not None and given.strip():
        place = f"{kind}“{given.strip()}”未识别"
    else:
        place = f"{kind}不明"
    return f"{PATH_LABELS[path]}·{TOPIC_LABELS[topic]}·{place}"


# --------------------------------------------------------------------------- hand-overs


@dataclass(frozen=True)
class Transfer:
    """The item moved to another unit that is responsible (转办)."""

    from_unit: str
    to_unit: str
    reason: str
    at: dt.datetime | None = None
    lead_reassigned: bool = False


@dataclass(frozen=True)
class HandBack:
    """The unit gave the item back to the fallback unit to route again (退回)."""

    from_unit: str
    to_unit: str
    reason: str
    at: dt.datetime | None = None


Hop = Transfer | HandBack


@dataclass(frozen=True)
class Assignment:
    """Who works on an item now, who leads it (首接负责) and every hop it took."""

    unit: str
    lead_unit: str
    hops: tuple[Hop, ...] = ()

    @classmethod
    def first(cls, unit_id: str) -> Assignment:
        """The assignment of a newly routed item: the first unit contacted also leads."""
        return cls(unit=unit_id, lead_unit=unit_id)

    @property
    def hop_count(self) -> int:
        """How often the item changed hands: transfers plus hand-backs (a measure of 推诿)."""
        return len(self.hops)

    @property
    def hand_backs(self) -> int:
        """How often a unit gave the item back as not its own."""
        return sum(1 for hop in self.hops if isinstance(hop, HandBack))

    @property
    def units_involved(self) -> tuple[str, ...]:
        """Every unit that held the item, in order, each once."""
        seen = [self.hops[0].from_unit] if self.hops else [self.unit]
        for hop in self.hops:
            if hop.to_unit not in seen:
                seen.append(hop.to_unit)
        return tuple(seen)


def _required_reason(reason: str, what: str, what_en: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise HandoverError(f"{what}必须说明理由（a {what_en} needs a non-blank reason）")
    return text


def transfer(
    assignment: Assignment,
    to_unit: str,
    reason: str,
    data: RoutingData,
    *,
    reassign_lead: bool = False,
    at: dt.datetime | None = None,
) -> Assignment:
    """Move the item to ``to_unit``, with a reason; the hop is recorded.

    The lead unit stays the same (首接负责) unless ``reassign_lead`` says the receiving unit
    takes over responsibility. A transfer needs a non-blank reason, a known unit and a
    unit other than the current one.
    """
    text = _required_reason(reason, "转办", "transfer")
    target = find_unit(data, to_unit)
    if target.id == assignment.unit:
        raise HandoverError(
            f"不能转办给本单位 {assignment.unit}（cannot transfer an item to its current unit）"
        )
    hop = Transfer(assignment.unit, target.id, text, at, reassign_lead)
    return replace(
        assignment,
        unit=target.id,
        lead_unit=target.id if reassign_lead else assignment.lead_unit,
        hops=(*assignment.hops, hop),
    )


def hand_back(
    assignment: Assignment,
    reason: str,
    data: RoutingData,
    *,
    at: dt.datetime | None = None,
) -> Assignment:
    """Give the item back to the fallback unit (兜底), which routes it again; a reason is required.

    The lead unit does not change: whoever was contacted first stays responsible until
    someone explicitly takes the lead with ``transfer(..., reassign_lead=True)``.
    """
    text = _required_reason(reason, "退回", "hand-back")
    fallback = find_unit(data, data.routing.fallback)
    if assignment.unit == fallback.id:
        raise HandoverError(
            f"兜底单位 {fallback.id} 不能退回给自己，请转办给负责单位"
            "（the fallback unit cannot hand an item back to itself; transfer it instead）"
        )
    hop = HandBack(assignment.unit, fallback.id, text, at)
    return replace(assignment, unit=fallback.id, hops=(*assignment.hops, hop))
