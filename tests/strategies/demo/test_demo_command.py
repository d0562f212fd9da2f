"""`manage.py demo` supervises its processes: it starts web, worker, beat, the simulator and the
fake Kuaishou on the embedded SQLite database and folder broker, and leaves no process behind
when stopped."""

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from strategies.demo.supervisor import group_alive

ROOT = Path(__file__).resolve().parents[3]
STARTED = re.compile(r"demo: started (\w+) \(pid (\d+)\)")
APPROVALS_URL = re.compile(r"the approvals it received on (http://\S+/approvals)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("demo-var")


def demo_env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    # The output is parsed in English: the run's language (issue 12, 17: one per run).
    env.update(DEBUG="true", ATOM_VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1", LANGUAGE_CODE="en")
    return env


def start_demo(var_dir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--port", str(free_port()), *args],
        cwd=ROOT,
        env=demo_env(var_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def children(output: str) -> dict[str, int]:
    return {name: int(pid) for name, pid in STARTED.findall(output)}


def assert_nothing_left(pids: dict[str, int]) -> None:
    alive = [name for name, pid in pids.items() if group_alive(pid)]
    assert alive == [], f"left running: {alive}"


def test_check_mode_starts_web_worker_and_beat_then_stops_them_all(var_dir):
    demo = start_demo(var_dir, "--check")
    out, _ = demo.communicate(timeout=120)
    assert demo.returncode == 0, out
    assert "check passed" in out
    pids = children(out)
    assert set(pids) == {"web", "worker", "beat"}
    assert_nothing_left(pids)


def kuaishou_approved(database: Path) -> set[str]:
    """The demo-ks requests ATOM decided to approve and recorded as carried out."""
    with sqlite3.connect(database, timeout=20) as db:
        rows = db.execute(
            "SELECT r.aftersale_id FROM strategies_aftersalerequest r "
            "JOIN strategies_shop s ON s.id = r.shop_id "
            "WHERE s.code = 'demo-ks' AND r.status = 'executed'"
        ).fetchall()
    return {aftersale_id for (aftersale_id,) in rows}


def test_ctrl_c_stops_every_process_after_decisions_were_made(var_dir):
    demo = start_demo(var_dir, "--rate", "10", "--kuaishou-rate", "2")
    lines: list[str] = []
    deadline = time.monotonic() + 150
    assert demo.stdout is not None
    for line in demo.stdout:
        lines.append(line)
        if "ATOM demo is running" in line or time.monotonic() > deadline:
            break
    for line in demo.stdout:  # the banner's end, the fake's address in it
        lines.append(line)
        if line.startswith("=" * 72) or time.monotonic() > deadline:
            break
    found = APPROVALS_URL.search("".join(lines))
    database = var_dir / "atom.sqlite3"
    decided, on_platform, page = 0, {}, {}
    while time.monotonic() < deadline and (decided < 5 or len(on_platform) < 3):
        time.sleep(0.5)
        with sqlite3.connect(database, timeout=20) as db:
            (decided,) = db.execute("SELECT COUNT(*) FROM strategies_decision").fetchone()
        if found:
            page = requests.get(found.group(1) + ".json", timeout=5).json()  # up: the banner waited
            on_platform = {a["refundId"]: a for a in page["approvals"]}
    # Executed in ATOM before the page is read: an approval reaches the platform first.
    executed = kuaishou_approved(database)
    html = None
    if found:
        page = requests.get(found.group(1) + ".json", timeout=5).json()
        on_platform = {a["refundId"]: a for a in page["approvals"]}
        html = requests.get(found.group(1), timeout=5)
    os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    out, _ = demo.communicate(timeout=60)
    out = "".join(lines) + out
    assert demo.returncode == 0, out
    assert decided >= 5, out
    # The Kuaishou shop: pushes decided by its strategy and approved on the fake platform, once
    # each, for the refund's amount in fen; each one ATOM recorded as executed is on the page.
    assert found, out
    assert html is not None and html.status_code == 200 and "Fake Kuaishou" in html.text
    assert len(on_platform) >= 3, out
    assert len(page["approvals"]) == len(on_platform) == page["approved"]
    assert all(a["api"] == "open.seller.order.refund.approve" for a in on_platform.values())
    assert all(0 < a["refundAmount"] <= 5000 for a in on_platform.values())
    assert executed and executed <= set(on_platform), (executed, set(on_platform))
    done = re.search(r"simulate_traffic: done, \d+ requests .*", out)
    assert done and "202: " in done.group(0), out
    assert "error" not in done.group(0)  # the simulator stops before the web server
    pids = children(out)
    assert set(pids) == {"web", "worker", "beat", "simulator", "kuaishou"}
    assert_nothing_left(pids)
    assert "no process left" in out
