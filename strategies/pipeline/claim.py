"""Deciding from the request row (``ATOM_DISPATCH=postgres``; ``dispatch`` says how requests get
here, ``deciders`` runs the processes).

- **The claim** is ``SELECT … FOR UPDATE SKIP LOCKED`` on the request a notification named, or on
  the oldest fresh ``received`` one, in the statement that reads it for its decision
  (``rows.REQUEST_CLAIM_ID_LOAD``, ``REQUEST_CLAIM_OLDEST_LOAD``) and so in the decision's
  transaction. Two deciders never take the same request, and one that dies mid-way rolls back
  and leaves it ``received`` for the next.
- **Fresh** means changed within ``ATOM_SWEEP_AFTER_SECONDS``. Older requests belong to the
  sweeper, which hands them to Celery as it always did. A request whose decision keeps failing
  is aged past that window at once (``_hand_to_sweeper``), so it cannot spin a decider; the
  sweeper then gives it to the Celery task and its retry policy.
- **After COMMIT**, an approval is executed in the same process, as the Celery decision task
  does (``execute.decision_execute_after_decision``): the lease, the idempotent recording and the
  retry through ``execute_decision`` are the same.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from strategies.models import AfterSaleRequest, RequestStatus
from strategies.pipeline import decide, execute
from strategies.pipeline.dispatch import CHANNEL, MISSED

logger = logging.getLogger(__name__)


def _fresh_after(now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(seconds=settings.ATOM_SWEEP_AFTER_SECONDS)


@dataclass(frozen=True)
class Outcome:
    request_id: int
    result: str  # what the Celery task would return: an outcome, an execution state, or why not


def decide_next(*, request_id: int | None = None, now: dt.datetime | None = None) -> Outcome | None:
    """Claims request ``request_id`` (or else the oldest fresh ``received`` one), decides it and
    executes an approval; None when there is nothing to claim (decided, or held by another
    decider). One request's failure is never raised: that request is tried again
    (a deadlock victim, as the Celery task retries) or handed to the sweeper (and so to Celery),
    and the next call goes on with the others. A failure to claim at all (the database is
    down) is raised."""
    now = now or timezone.now()
    # As the Celery decision task: the approval executed here, or its execution task published.
    inline = settings.ATOM_EXECUTE_IN_DECISION_TASK
    try:
        # Looked up on the module at each call: the bench's CPU probes wrap it there.
        decided = decide.request_claim_and_decide(
            request_id=request_id,
            fresh_after=_fresh_after(now),
            now=now,
            enqueue_execution=not inline,
            claim_execution=inline,
        )
    except decide.NothingToDecide as ended:  # closed on its platform first
        return Outcome(request_id=ended.args[0], result="nothing_to_decide")
    except decide.ClaimedDecisionFailed as failed:
        request_id, cause = failed.request_id, failed.__cause__
        if isinstance(cause, OperationalError) and _failed_again(request_id) <= TRANSIENT_RETRIES:
            logger.warning("deciding request %s failed (%s); trying again", request_id, cause)
            return Outcome(request_id=request_id, result="retrying")
        logger.error(
            "deciding request %s failed; the sweeper takes it over",
            request_id,
            exc_info=cause,
        )
        _failures.pop(request_id, None)
        _hand_to_sweeper(request_id, now=now)
        return Outcome(request_id=request_id, result="handed_to_sweeper")
    if decided is None:
        return None
    decision = decided.decision
    _failures.pop(decision.request_id, None)
    if not inline:  # ATOM_EXECUTE_IN_DECISION_TASK=false: the execution task was published
        return Outcome(request_id=decision.request_id, result=decision.outcome)
    try:
        result = execute.decision_execute_after_decision(
            decision, claimed=decided.execution, claimed_started=decided.started
        )
    except Exception:
        # The approval is committed and its reservation held: the sweeper executes it (after
        # its lease, if the claim was taken), as after a Celery task that failed.
        logger.exception("executing decision %s failed; the sweeper takes it over", decision.pk)
        result = "execution_failed"
    return Outcome(request_id=decision.request_id, result=result)


# Transient failures per request in this process (a handful at most: cleared on success).
_failures: dict[int, int] = {}
TRANSIENT_RETRIES = 3


def _failed_again(request_id: int) -> int:
    if len(_failures) > 1000:  # never grows without bound
        _failures.clear()
    _failures[request_id] = _failures.get(request_id, 0) + 1
    return _failures[request_id]


def _hand_to_sweeper(request_id: int, *, now: dt.datetime) -> None:
    """Ages the request out of the deciders' window, so the sweeper's next run gives it to the
    Celery task (and its back-off) instead of every decider trying it again at once."""
    aged = _fresh_after(now) - dt.timedelta(seconds=1)
    try:
        AfterSaleRequest.objects.filter(pk=request_id, status=RequestStatus.RECEIVED).update(
            updated_at=aged
        )
    except DatabaseError:  # the database is gone: the request stays fresh and is tried again
        logger.warning("could not hand request %s to the sweeper", request_id, exc_info=True)


class Listener:
    """A connection of its own in ``LISTEN atom_decide`` (the work goes through Django's
    connection, which may be closed and reopened between requests)."""

    def __init__(self) -> None:
        self._wrapper: BaseDatabaseWrapper | None = None
        self._reconnected = False

    def _connect(self) -> BaseDatabaseWrapper:
        from django.db import connections

        wrapper = connections.create_connection("default")
        wrapper.ensure_connection()
        wrapper.set_autocommit(True)
        wrapper.connection.execute(f"LISTEN {CHANNEL}")
        return wrapper

    def fileno(self) -> int | None:
        """The socket to wait on; None while (re)connecting."""
        try:
            if self._wrapper is None:
                self._wrapper = self._connect()
                self._reconnected = True
            return self._wrapper.connection.pgconn.socket
        except Exception as exc:  # the database is down: try again on the next wait
            logger.warning("deciders' LISTEN connection failed (%s)", exc)
            self.close()
            return None

    def reconnected(self) -> bool:
        """Whether ``fileno`` (re)connected since the last call: whatever was committed while
        nobody listened was not heard, so the caller looks for it (after LISTEN, not before)."""
        reconnected, self._reconnected = self._reconnected, False
        return reconnected

    def received(self) -> list[int]:
        """The request ids notified since the last call (call once the socket is readable).
        ``MISSED`` stands for a payload that is not an id: a decider then looks for the
        oldest fresh requests. A lost connection is closed here and reconnected by the next
        ``fileno`` (``reconnected`` then says so)."""
        if self._wrapper is None:
            return []
        try:
            pgconn = self._wrapper.connection.pgconn
            pgconn.consume_input()
            if pgconn.status != 0:  # psycopg.pq.ConnStatus.OK: the server went away
                raise ConnectionError("the LISTEN connection is closed")
            ids = []
            while (note := pgconn.notifies()) is not None:
                try:
                    ids.append(int(note.extra))
                except ValueError:
                    ids.append(MISSED)
            return ids
        except Exception as exc:  # psycopg's or Django's errors, a closed socket
            logger.warning("deciders' LISTEN connection lost (%s); reconnecting", exc)
            self.close()
            return []

    def close(self) -> None:
        if self._wrapper is not None:
            # Closing a broken connection may fail too; it is dropped all the same.
            with contextlib.suppress(Exception):
                self._wrapper.close()
            self._wrapper = None
