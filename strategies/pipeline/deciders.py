"""The decider processes of ``ATOM_DISPATCH=postgres`` (``manage.py run_deciders``).

A supervisor forks the deciders, restarts one that dies, and is the only process in ``LISTEN``
(``claim.Listener``): each notification names a request that intake has committed. The
supervisor queues the ids and hands each to one idle decider (8 bytes on that decider's own
pipe); a decider says it is idle again by writing its pid on a pipe they share. So one request
costs one claim, by primary key, and never wakes the others.

Nothing depends on the queue in memory: the request row is the truth. Every ``poll`` seconds,
and at once after a decider dies or the LISTEN connection is re-established, one idle decider
looks for the oldest fresh ``received`` requests itself (``claim.decide_next`` without an id,
at most ``LOOK_BATCH``), and the sweeper hands anything older to Celery. Several hosts may
run deciders: each hears every notification, and the claim's ``SKIP LOCKED`` and status check
let exactly one decide.

Each request has ``CELERY_TASK_TIME_LIMIT`` seconds, as a Celery task does: past it the decider
is killed (``SIGALRM``; its transaction rolls back, an execution in flight keeps its lease and is
recovered as after any crash) and replaced. SIGTERM or SIGINT to the supervisor stops every
decider after the request in hand.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import struct
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.db import connections

from strategies.pipeline import claim, dispatch

logger = logging.getLogger(__name__)

RESTART_PAUSE_SECONDS = 1.0  # a decider that dies at once is not restarted in a tight loop
_PID = struct.Struct("=i")  # an idle message: the decider's pid (shorter than PIPE_BUF: atomic)
_ID = struct.Struct("=q")  # a request id handed to a decider; dispatch.MISSED: look for work
LOOK_BATCH = 100  # requests one look claims at most before its decider is free again
MAX_QUEUED = 100_000  # ids held in memory; past it they are dropped and deciders look instead
TRANSIENT_PAUSE_SECONDS = 0.05  # before deciding again after a deadlock or a lost connection


class _Output(Protocol):
    def write(self, text: str) -> Any: ...

    def flush(self) -> Any: ...


def _signals_wake_select() -> tuple[int, int]:
    """A pipe that every signal handled in Python writes to (``signal.set_wakeup_fd``): waiting
    on it too, a ``select`` returns at once for a SIGTERM or a SIGCHLD instead of retrying
    until its timeout (PEP 475). Its (read, write) ends: the read end to drain."""
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    return read, write


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 512):
            pass


@dataclass
class _Child:
    pid: int
    wake: int  # the write end of its pipe of request ids


class Supervisor:
    def __init__(self, *, processes: int, poll: float, out: _Output | None = None) -> None:
        self.processes = processes
        self.poll = poll
        self.out = out or sys.stdout
        self.children: dict[int, _Child] = {}
        self.idle: deque[int] = deque()  # pids of the deciders waiting for a request
        self.pending: deque[int] = deque()  # request ids notified and not handed out yet
        self.look = True  # an idle decider is to look for fresh requests (first: what waits)
        self.last_look = time.monotonic()
        self.looking: int | None = None  # the decider looking now: one at a time
        self.respawn_at: list[float] = []  # when to replace each decider that died
        self.stopping = False
        self.idle_read, self.idle_write = os.pipe()
        os.set_blocking(self.idle_read, False)
        self.listener = claim.Listener()

    def run(self) -> None:
        connections.close_all()  # no connection crosses a fork
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a dead decider wakes the select
        self.signalled, self.signalled_write = _signals_wake_select()
        for _ in range(self.processes):
            self._spawn()
        self.out.write(f"{self.processes} deciders running (supervisor pid {os.getpid()})\n")
        self.out.flush()
        try:
            while not self.stopping:
                self._step()
                self._reap()
                self._respawn_due()
        finally:
            self._stop_children()
            self.listener.close()

    def _step(self) -> None:
        socket = self.listener.fileno()
        if self.listener.reconnected():
            # (Re)connected: what was committed while nobody listened was not heard. The look
            # comes after LISTEN, so nothing falls between the two.
            self.look = True
        waiting = [self.idle_read, self.signalled] + ([socket] if socket is not None else [])
        now = time.monotonic()
        if not self.look:
            timeout = max(0.0, self.last_look + self.poll - now)  # the next periodic look
        elif self.idle and self.looking is None:
            timeout = 0.0  # a look is due and someone can take it
        else:
            timeout = self.poll  # a look waits for a decider: its "idle" wakes the select
        if self.respawn_at:
            timeout = min(timeout, max(0.0, min(self.respawn_at) - now))
        try:
            ready, _, _ = select.select(waiting, [], [], timeout)
        except InterruptedError:  # pragma: no cover - PEP 475 retries select itself
            return
        if self.signalled in ready:
            _drain(self.signalled)
        if self.stopping:
            return
        if socket is not None and socket in ready:
            self._queue(self.listener.received())
        self._read_idle()
        if time.monotonic() - self.last_look >= self.poll:
            # Every poll seconds, busy or not: an id lost with a dead decider, or one the
            # queue dropped, is found by the next idle decider's look.
            self.look = True
        while self.idle and ((self.look and self.looking is None) or self.pending):
            if self.look and self.looking is None:
                # One look at a time: under load a look goes on while requests keep coming,
                # and the ids must still go to the others, by primary key.
                self.look = False
                self.last_look = time.monotonic()
                self.looking = self.idle.popleft()
                self._hand(self.looking, dispatch.MISSED)
            else:
                self._hand(self.idle.popleft(), self.pending.popleft())
        if socket is None:
            time.sleep(min(self.poll, 1.0))  # the database is down: do not spin

    def _queue(self, ids: list[int]) -> None:
        for request_id in ids:
            if request_id == dispatch.MISSED or len(self.pending) >= MAX_QUEUED:
                self.look = True  # one decider looking finds them all
            else:
                self.pending.append(request_id)

    def _read_idle(self) -> None:
        while True:
            try:
                data = os.read(self.idle_read, _PID.size * 64)
            except BlockingIOError:
                return
            if not data:
                return
            for (pid,) in _PID.iter_unpack(data):
                if pid == self.looking:
                    self.looking = None  # its look is over
                if pid in self.children and pid not in self.idle:
                    self.idle.append(pid)

    def _hand(self, pid: int, request_id: int) -> None:
        child = self.children.get(pid)
        try:
            if child is None:
                raise ProcessLookupError(pid)
            os.write(child.wake, _ID.pack(request_id))
        except OSError:  # it died meanwhile: _reap replaces it; the request waits for the next
            if request_id == dispatch.MISSED:
                self.look = True
                if self.looking == pid:
                    self.looking = None
            else:
                self.pending.appendleft(request_id)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            with contextlib.suppress(OSError):
                os.close(child.wake)
            with contextlib.suppress(ValueError):
                self.idle.remove(pid)
            if pid == self.looking:
                self.looking = None
            self.look = True  # the request it held, or was handed, is found again
            if not self.stopping:
                code = os.waitstatus_to_exitcode(status)
                logger.warning("decider %s ended (%s); starting another", pid, code)
                # Not at once (one that dies on start must not spin), and without holding up
                # the others' hand-outs meanwhile.
                self.respawn_at.append(time.monotonic() + RESTART_PAUSE_SECONDS)

    def _respawn_due(self) -> None:
        now = time.monotonic()
        due = [t for t in self.respawn_at if t <= now]
        self.respawn_at = [t for t in self.respawn_at if t > now]
        for _ in due:
            if self.stopping:
                return
            self._spawn()

    def _stop(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def _stop_children(self) -> None:
        # Closing their pipes stops them too: a decider that reads the end of its pipe stops.
        for child in self.children.values():
            with contextlib.suppress(OSError):
                os.close(child.wake)
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
        while self.children:
            try:
                pid, _ = os.wait()
            except ChildProcessError:
                break
            self.children.pop(pid, None)

    def _spawn(self) -> None:
        wake_read, wake_write = os.pipe()
        # A SIGTERM between the fork and the decider's own handler would reach the
        # supervisor's handler in the child and be lost: it waits, blocked, until then.
        stops = {signal.SIGTERM, signal.SIGINT}
        signal.pthread_sigmask(signal.SIG_BLOCK, stops)
        try:
            pid = os.fork()
        except OSError:  # no memory or no process left: try again later, stoppable meanwhile
            signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
            os.close(wake_read)
            os.close(wake_write)
            logger.exception("could not start a decider; trying again")
            self.respawn_at.append(time.monotonic() + RESTART_PAUSE_SECONDS)
            return
        if pid:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
            os.close(wake_read)
            self.children[pid] = _Child(pid=pid, wake=wake_write)
            return
        # The child: the supervisor's LISTEN connection is left alone (closing it here would
        # close the supervisor's), and os._exit skips every finaliser.
        code = 0
        try:
            os.close(wake_write)
            os.close(self.idle_read)
            os.close(self.signalled)
            os.close(self.signalled_write)
            for child in self.children.values():
                os.close(child.wake)
            Decider(wake=wake_read, idle=self.idle_write, poll=self.poll, parent=os.getppid()).run()
        except BaseException:  # the supervisor starts another
            logger.exception("decider %s crashed", os.getpid())
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)


class Decider:
    def __init__(self, *, wake: int, idle: int, poll: float, parent: int) -> None:
        self.wake = wake
        self.idle = idle
        self.poll = poll
        self.parent = parent
        self.stopping = False

    def _stop(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor stops it on a Ctrl-C
        signal.signal(signal.SIGALRM, signal.SIG_DFL)  # past the time limit: killed, replaced
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.signalled, _ = _signals_wake_select()  # its own, not the supervisor's
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
        dispatch.decider_started.send(sender=Decider)
        self.limit = int(settings.CELERY_TASK_TIME_LIMIT)
        me = _PID.pack(os.getpid())
        announced = False
        try:
            while not self.stopping and os.getppid() == self.parent:
                if not announced:
                    # Once per hand-out, never again while waiting: the supervisor must never
                    # count a decider that has been handed work as idle.
                    os.write(self.idle, me)
                    announced = True
                request_id = self._next()
                if request_id is None:
                    continue
                announced = False
                if request_id == dispatch.MISSED:
                    self._decide_oldest()
                else:
                    self._decide(request_id)
        finally:
            connections.close_all()

    def _decide(self, request_id: int) -> None:
        for attempt in range(claim.TRANSIENT_RETRIES + 1):
            outcome = self._guarded(request_id)
            if outcome is None or outcome.result != "retrying":
                return
            time.sleep(TRANSIENT_PAUSE_SECONDS * 2**attempt)

    def _decide_oldest(self) -> None:
        # A batch, then back to the supervisor: under load a look would never end.
        for _ in range(LOOK_BATCH):
            if self.stopping or self._guarded(None) is None:
                return

    def _guarded(self, request_id: int | None) -> claim.Outcome | None:
        """One claim under the time limit; None if the claim itself failed (the database is
        restarting: the request stays ``received`` for a later look or the sweeper)."""
        signal.alarm(self.limit)
        try:
            return claim.decide_next(request_id=request_id)
        except Exception:
            logger.warning("a decider could not claim (the database?)", exc_info=True)
            connections["default"].close()
            time.sleep(min(self.poll, 1.0))
            return None
        finally:
            signal.alarm(0)

    def _next(self) -> int | None:
        """The next request id from the supervisor; None after a while without one (so a
        supervisor that is gone is noticed)."""
        try:
            ready, _, _ = select.select(
                [self.wake, self.signalled], [], [], max(self.poll * 5, 5.0)
            )
        except InterruptedError:  # pragma: no cover - PEP 475 retries select itself
            return None
        if self.signalled in ready:
            _drain(self.signalled)
        if self.wake not in ready:
            return None
        data = os.read(self.wake, _ID.size)
        if len(data) < _ID.size:  # the supervisor closed the pipe: it is gone
            self.stopping = not data
            return None
        return _ID.unpack(data)[0]
