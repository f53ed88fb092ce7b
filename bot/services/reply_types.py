"""The reply types of a disclosure answer (政府信息公开条例 Art 36), coded as the rows of the
annual report table (2021 format) "三、本年度办理结果": ``"3.4"`` is row (三) item 4,
不予公开·保护第三方合法权益. Labels (zh and en) are in config/texts.yaml under ``reply_type``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

REPLY_GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "1": ("1",),  # (一) 予以公开
        "2": ("2",),  # (二) 部分公开
        # (三) 不予公开: 国家秘密; 其他法律行政法规禁止公开; 危及"三安全一稳定";
        # 保护第三方合法权益; 三类内部事务信息; 四类过程性信息; 行政执法案卷; 行政查询事项
        "3": tuple(f"3.{n}" for n in range(1, 9)),
        # (四) 无法提供: 本机关不掌握; 没有现成信息需要另行制作; 补正后申请内容仍不明确
        "4": tuple(f"4.{n}" for n in range(1, 4)),
        # (五) 不予处理: 信访举报投诉类申请; 重复申请; 要求提供公开出版物; 无正当理由大量反复申请;
        # 要求行政机关确认或重新出具已获取信息
        "5": tuple(f"5.{n}" for n in range(1, 6)),
        # (六) 其他处理: 逾期不补正; 逾期未缴费; 其他
        "6": tuple(f"6.{n}" for n in range(1, 4)),
    }
)

REPLY_TYPES: frozenset[str] = frozenset(code for codes in REPLY_GROUPS.values() for code in codes)


def is_reply_type(code: str | None) -> bool:
    return code in REPLY_TYPES
