"""Fixtures shared by the decision-service tests."""

import pytest

from strategies.services import decisions


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, list]]:
    """The tasks the decision service publishes after commit (its one seam to the broker)."""
    calls: list[tuple[str, list]] = []
    monkeypatch.setattr(decisions, "_send_task", lambda name, args: calls.append((name, args)))
    return calls
