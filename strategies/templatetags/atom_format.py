"""``{{ value|money }}``: the one money format of the back office (``100,000.00``)."""

from __future__ import annotations

from typing import Any

from django import template

from strategies.formatting import money as format_money

register = template.Library()


@register.filter
def money(value: Any) -> str:
    return format_money(value)
