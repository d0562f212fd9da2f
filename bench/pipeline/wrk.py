"""bench/pipeline's compiled load generator: Debian's ``wrk`` sending requests signed beforehand.

The Python sender signs every request (HMAC, JSON) on the same two cores as ATOM, so at 400/s it
measured itself as much as ATOM. Here Python writes every request of the phase to a file first
(``write_requests``), each signed with a timestamp close to the moment it should leave, so it is
still inside the API's +-300 s window when wrk sends it; wrk (C, epoll, keep-alive connections)
then sends them closed-loop, each exactly once (``presigned.lua``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("presigned.lua")
# The API refuses a timestamp more than ATOM_SIGNATURE_MAX_SKEW_SECONDS (300) from its clock.
SKEW_SECONDS = 300


def wrk_path() -> str | None:
    return shutil.which("wrk")


def write_requests(
    path: Path,
    *,
    shops: list[tuple[str, str]],
    prefix: str,
    count: int,
    start_at: float,
    duration: float,
) -> int:
    """``count`` new requests (bodies of ``strategies.demo.traffic``, no retries), round-robin
    over ``shops``, signed as API.md says, one a line: ``shop\\tts\\tsignature\\tbody``.

    Request i is stamped with the time it would leave at an even pace over ``duration``: sent
    sooner or later than that by up to the skew it still passes, so a phase of up to ~10 minutes
    never meets an expired signature."""
    from strategies.demo.traffic import TrafficGenerator
    from strategies.platforms.generic.signing import sign

    if duration > 2 * SKEW_SECONDS - 60:
        raise ValueError(f"a wrk phase of {duration:.0f} s outlives the signatures' window")
    gens = [
        TrafficGenerator(seed=n, id_prefix=f"{prefix}W{n:02d}-", retry_rate=0.0)
        for n in range(len(shops))
    ]
    now = dt.datetime.now(dt.UTC)
    with path.open("wb") as out:
        for i in range(count):
            n = i % len(shops)
            code, secret = shops[n]
            body = gens[n].next_body(now)
            ts = str(int(start_at + duration * i / max(count, 1)))
            signature = sign(secret=secret, timestamp=ts, body=body)
            if b"\t" in body or b"\n" in body:  # compact JSON escapes both; the format needs it
                raise ValueError("a body holds a tab or a newline")
            out.write(f"{code}\t{ts}\t{signature}\t".encode() + body + b"\n")
    return count


def run_wrk(
    *,
    url: str,
    requests_file: Path,
    duration: float,
    threads: int,
    connections: int,
    log: Path,
) -> dict[str, Any]:
    """Runs wrk for ``duration`` seconds (or until every request is sent): the figures of
    ``offer()`` in bench/pipeline, from wrk's own summary."""
    binary = wrk_path()
    if binary is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    argv = [
        binary,
        f"-t{threads}",
        f"-c{max(connections, threads)}",
        f"-d{max(1, math.ceil(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(SCRIPT),
        url,
        "--",
        str(requests_file),
        str(threads),
    ]
    started = time.time()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    ended = time.time()
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(proc.stdout + proc.stderr)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    summary = json.loads(line.removeprefix("RESULT "))
    errors = {k: v for k, v in summary["errors"].items() if v}
    statuses = dict(summary["statuses"])
    if errors:
        statuses["error"] = sum(errors.values())
    return {
        "load_generator": "wrk",
        "started": started,
        "ended": ended,
        "sent": summary["requests"],
        "statuses": statuses,
        "resent_after_end": summary["resent_after_end"],
        "intake_p50_ms": summary["latency_p50_us"] / 1000,
        "intake_p99_ms": summary["latency_p99_us"] / 1000,
        "send_late_p99_ms": math.nan,  # closed loop: nothing is due at a set time
        "wrk_errors": errors,
    }
