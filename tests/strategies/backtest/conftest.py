"""Fixtures of the backtest's tests (builders: ``tests.strategies.backtest.builders``)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_broker(sent):
    """No worker here: what the decision service publishes is kept (the publish seam)."""
    return sent
