"""The first step of adding a strategy: pick its scenario, each said in one sentence about the
requests it covers (PRODUCT.md "The five scenarios", ``strategies.matching.scenario_covers``)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from strategies.models import SCENARIO_ORDER, Scenario

StrOrPromise = str | Promise

# One sentence per scenario: which requests it covers and what an approval does.
SCENARIO_COVERS: dict[str, StrOrPromise] = {
    Scenario.TAGGED_REFUND_NO_RETURN: _(
        "Refund-without-return requests on shipped or received orders the platform tagged "
        "“refund without return”: the money goes back and nothing is sent back. Tried first."
    ),
    Scenario.PRE_SHIPMENT_REFUND: _(
        "Refund-only requests on orders not shipped yet: the money goes back, nothing was sent."
    ),
    Scenario.POST_SHIPMENT_NO_RETURN: _(
        "Refund-only and return-and-refund requests on shipped or received orders: the money "
        "goes back and the goods stay with the buyer (a return request becomes refund only)."
    ),
    Scenario.POST_SHIPMENT_REFUND: _(
        "Refund-only requests on shipped or received orders: the money goes back, the buyer "
        "keeps the parcel."
    ),
    Scenario.POST_SHIPMENT_RETURN_REFUND: _(
        "Return-and-refund requests on shipped or received orders: the buyer is told to send "
        "the goods back; the refund follows the return."
    ),
}


@dataclass(frozen=True)
class ScenarioChoice:
    code: str
    label: str
    covers: str
    url: str
    count: int


def scenario_choices(
    *, add_url: str, query: dict[str, str], counts: dict[str, int]
) -> list[ScenarioChoice]:
    """The scenarios in the fixed order they are tried, each with its add link."""
    return [
        ScenarioChoice(
            code=code,
            label=str(Scenario(code).label),
            covers=str(SCENARIO_COVERS[code]),
            url=f"{add_url}?{urlencode({**query, 'scenario': code})}",
            count=counts.get(code, 0),
        )
        for code in SCENARIO_ORDER
    ]
