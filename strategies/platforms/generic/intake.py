"""The generic channel's way in: a payload of API.md, validated, then stored by the pipeline."""

from __future__ import annotations

from typing import Any

from strategies.models import Shop
from strategies.pipeline.intake import Receipt, request_receive
from strategies.platforms.generic.schema import aftersale_payload_clean


def aftersale_receive(*, shop: Shop, payload: Any) -> Receipt:
    """Stores the request in ``payload`` (parsed JSON) for ``shop`` and queues its decision.

    Raises ``PayloadInvalid`` (nothing stored) or ``PayloadConflict`` (nothing changed).
    """
    return request_receive(shop=shop, request=aftersale_payload_clean(payload), payload=payload)
