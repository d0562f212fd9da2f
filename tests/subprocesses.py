"""Settings checked where they are read: Django set up in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def django_setup(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``django.setup()`` with ``env`` as the whole environment (a refused setting fails it)."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']="
            "'atomsite.settings'; django.setup()",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
