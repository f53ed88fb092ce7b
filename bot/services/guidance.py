"""What the citizen is told on the reconsideration and litigation paths (诉访分离: these are
not handled as petitions; the bureau points to the competent body and the time limits)."""

from __future__ import annotations

from routing.config import Config


def government_of(config: Config, body: str) -> str:
    """The competent 复议机关 for an act of ``body`` (行政复议法 2023 Art 24: the people's
    government at county level or above hears acts of its own departments).

    An act of a county or district bureau goes to that county's government; an act of the
    city bureau (or a body we cannot place) goes to the organisation's own government, e.g.
    安顺市民政局 → 安顺市人民政府. Where the subdivisions are not governments (街道/镇),
    the organisation's government is competent.
    """
    organisation = config.units.organisation
    own = organisation.name.removesuffix("民政局") + "人民政府"
    if organisation.subdivision_kind != "县区":
        return own
    text = body or ""
    for district in config.units.districts:
        names = [district.name, district.full_name, *district.aliases, *district.towns]
        if not any(name and name in text for name in names):
            continue
        # A county bureau (…民政局) is a department of the county government; the 社会事务
        # 管理局 of a development zone or scenic area answers to a 管委会, not a government,
        # so its acts go to the city government.
        bureaus = [
            unit
            for unit in config.units.units
            if unit.kind == "subdivision" and district.name in unit.districts
        ]
        if any(unit.name.endswith("民政局") for unit in bureaus):
            return f"{district.full_name or district.name}人民政府"
        return own
    return own
