"""The buyer's reason as a marketplace words it, mapped to ATOM's reasons.

Neither Kuaishou nor Douyin publishes its reason codes in the documents we could read (see
docs/platforms/), so the mapping reads the text the buyer picked, which both platforms return
with the request. Anything not recognised is ``other``; the platform's own text stays in the
stored payload and is shown to the merchant.
"""

from __future__ import annotations

from strategies.models import Reason

# Checked in this order: the first phrase found in the text decides. More specific phrases come
# first ("七天无理由" before "不想要").
_PHRASES: tuple[tuple[str, str], ...] = (
    ("七天无理由", Reason.SEVEN_DAY_NO_REASON),
    ("7天无理由", Reason.SEVEN_DAY_NO_REASON),
    ("未按约定时间发货", Reason.NOT_SHIPPED_ON_TIME),
    ("未按时发货", Reason.NOT_SHIPPED_ON_TIME),
    ("发货慢", Reason.NOT_SHIPPED_ON_TIME),
    ("延迟发货", Reason.NOT_SHIPPED_ON_TIME),
    ("未收到货", Reason.NOT_RECEIVED),
    ("没收到货", Reason.NOT_RECEIVED),
    ("快递一直未送到", Reason.NOT_RECEIVED),
    ("物流", Reason.NOT_RECEIVED),
    ("质量", Reason.QUALITY_ISSUE),
    ("破损", Reason.QUALITY_ISSUE),
    ("瑕疵", Reason.QUALITY_ISSUE),
    ("发错", Reason.WRONG_OR_MISSING_ITEM),
    ("少件", Reason.WRONG_OR_MISSING_ITEM),
    ("漏发", Reason.WRONG_OR_MISSING_ITEM),
    ("错发", Reason.WRONG_OR_MISSING_ITEM),
    ("描述不符", Reason.NOT_AS_DESCRIBED),
    ("与描述不一致", Reason.NOT_AS_DESCRIBED),
    ("假冒", Reason.NOT_AS_DESCRIBED),
    ("不想要", Reason.NO_LONGER_NEEDED),
    ("拍错", Reason.NO_LONGER_NEEDED),
    ("多拍", Reason.NO_LONGER_NEEDED),
    ("拍多", Reason.NO_LONGER_NEEDED),
    ("不喜欢", Reason.NO_LONGER_NEEDED),
)


def reason_from_text(text: str | None) -> str:
    """ATOM's reason for the platform's reason text; ``other`` when nothing matches."""
    if not text:
        return str(Reason.OTHER)
    for phrase, reason in _PHRASES:
        if phrase in text:
            return str(reason)
    return str(Reason.OTHER)
