"""bench/pipeline's compiled load generator (issue 16): Debian's wrk sends the requests Python
signed beforehand, none twice, and the API accepts every one (the signatures, stamped
ahead of their send time, are inside its 300 s window). Also the CPU probes' bookkeeping: a
probed call nested in another counts to its own stage only."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench.pipeline import cpu, wrk
from strategies.models import AfterSaleRequest
from tests.factories import make_shop

pytestmark = pytest.mark.django_db(transaction=True)


def test_wrk_sends_each_pre_signed_request_once_and_the_api_accepts_all(
    live_server, tmp_path, sent
):
    shops = [make_shop(code=f"wrk-{n}") for n in range(2)]
    pairs = [(s.code, s.api_secret) for s in shops]
    requests_file = tmp_path / "requests.tsv"
    count = 60
    # Stamped as if sent evenly over the next 200 s: the last ones are ~200 s ahead of the
    # clock when wrk sends them at once, still inside the API's 300 s.
    wrk.write_requests(
        requests_file,
        shops=pairs,
        prefix="T",
        count=count,
        start_at=time.time(),
        duration=200,
    )
    assert len(requests_file.read_text().splitlines()) == count

    result = wrk.run_wrk(
        url=f"{live_server.url}/api/v1/aftersales",
        requests_file=requests_file,
        duration=3,
        threads=2,
        connections=4,
        log=tmp_path / "wrk.log",
    )

    assert result["load_generator"] == "wrk"
    assert set(result["statuses"]) <= {"202", "200"}, result  # never refused: 401, 413, ...
    stored = AfterSaleRequest.objects.count()
    # Each accepted once (a 200 is an identical retry of one already stored). When the server
    # closes a connection (Django's live server does after every answer) wrk may drop the request
    # it had built for it: at most one per connection is never sent.
    assert stored == result["statuses"]["202"]
    assert count - 4 <= stored <= count
    assert AfterSaleRequest.objects.filter(shop__code="wrk-1").count() >= count // 2 - 4
    assert len(sent) == stored  # each queued its decision once


def test_a_phase_longer_than_the_signature_window_is_refused(tmp_path):
    with pytest.raises(ValueError, match="outlives the signatures' window"):
        wrk.write_requests(
            tmp_path / "r.tsv",
            shops=[("s", "x" * 32)],
            prefix="T",
            count=1,
            start_at=time.time(),
            duration=600,
        )


def test_a_nested_probe_counts_to_its_own_stage_only(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(cpu, "_totals", {})

    def busy(seconds: float) -> None:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    inner = cpu._probe("publish", lambda: busy(0.05))
    outer = cpu._probe("decide", lambda: (busy(0.05), inner()))
    outer()
    decide, publish = cpu._totals["decide"][0], cpu._totals["publish"][0]
    assert 0.045 < publish < 0.09
    assert 0.045 < decide < 0.09  # without the nested publish's 0.05 s
    assert cpu._totals["decide"][1] == cpu._totals["publish"][1] == 1
