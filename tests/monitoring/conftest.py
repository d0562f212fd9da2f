"""Fixtures of the monitoring tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def staff_client(client, viewer):
    client.force_login(viewer)
    return client
