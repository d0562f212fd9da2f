"""The demo's process supervisor: starts its processes, relays and logs their output, knows when
they are ready, and stops every one of them, whatever processes they started, leaving none.

Processes start the way honcho starts a Procfile's (``honcho.process.Popen``: a shell command in
a session of its own, output and errors merged); ``exec`` makes the program itself the session
leader, so its pid is the one signalled and reported. psutil walks and ends the process trees
(a Celery worker's pool processes) and says whether anything of a session is left.

honcho's ``Manager`` runs a Procfile as a whole and is not used: it starts everything at once
(the simulator must wait for a healthy web server and a ready worker), stops everything when any
process ends (the simulator ending its ``--duration`` must leave the site up), and signals every
process of a group at once with a 5 s grace (a Celery worker shuts its pool down itself, after
its running tasks).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
import shlex
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil
from django.utils.translation import gettext
from honcho.process import Popen

STOP_TIMEOUT = 15.0
# The simulator is stopped first and alone: its requests in flight get their answers.
FIRST_STOP_TIMEOUT = 5.0

_libc: Any = None
with contextlib.suppress(OSError, TypeError):
    _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """Runs in the child before exec: SIGTERM it if the demo dies (even by SIGKILL)."""

    def setup() -> None:
        if _libc is not None:
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return setup


def session_members(sid: int) -> list[psutil.Process]:
    """The live (non-zombie) processes of session ``sid``: a child and all it started."""
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (psutil.Error, OSError):
            continue  # gone meanwhile, or not ours to look at
    return members


def group_alive(pid: int) -> bool:
    """Whether anything of the session that process ``pid`` led is still running."""
    return bool(session_members(pid))


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 (our own URL)
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Child:
    """One supervised process: its output goes to its log, and to the terminal when echoed."""

    name: str
    argv: list[str]
    log_path: Path
    echo: Callable[[str], None] | None
    say: Callable[[str], None]
    ready_marker: str | None = None
    # Lines echoed even when the rest only goes to the log (the worker's alerts and errors).
    highlight: re.Pattern[str] | None = None
    proc: subprocess.Popen | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    tail: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError(f"{self.name} was not started")
        return self.proc.pid

    def start(self, *, cwd: Path) -> None:
        self.proc = Popen(
            f"exec {shlex.join(self.argv)}",
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent(os.getpid()),
        )
        threading.Thread(target=self._pump, name=f"demo-{self.name}", daemon=True).start()

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        stream: IO[bytes] = self.proc.stdout
        with self.log_path.open("a", encoding="utf-8") as log:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                log.write(line + "\n")
                log.flush()
                self.tail = [*self.tail[-19:], line]
                if self.ready_marker and self.ready_marker in line:
                    self.ready.set()
                if self.echo is not None:
                    self.echo(f"{self.name:>9} | {line}")
                elif self.highlight is not None and self.highlight.search(line):
                    self.say(f"{self.name:>9} | {line}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    """Starts children, waits until they are ready, and stops them all in a given order."""

    def __init__(
        self, *, cwd: Path, log_dir: Path, say: Callable[[str], None], stop: threading.Event
    ) -> None:
        self.cwd = cwd
        self.log_dir = log_dir
        self.say = say
        self.stop = stop
        self.children: list[Child] = []

    def start(
        self,
        name: str,
        argv: list[str],
        *,
        echo: bool,
        ready: str | None = None,
        highlight: re.Pattern[str] | None = None,
    ) -> Child:
        child = Child(
            name=name,
            argv=argv,
            log_path=self.log_dir / f"{name}.log",
            echo=self.say if echo else None,
            say=self.say,
            ready_marker=ready,
            highlight=highlight,
        )
        child.start(cwd=self.cwd)
        self.children.append(child)
        self.say(
            gettext("demo: started %(name)s (pid %(pid)s), log %(log)s")
            % {"name": name, "pid": child.pid, "log": child.log_path}
        )
        return child

    def report_death(self, child: Child) -> None:
        code = child.proc.returncode if child.proc is not None else None
        self.say(
            gettext("demo: %(name)s exited with status %(code)s; its last lines:")
            % {"name": child.name, "code": code}
        )
        for line in child.tail:
            self.say(f"{child.name:>9} | {line}")

    def dead(self) -> Child | None:
        """The first child that is no longer running, if any."""
        return next((c for c in self.children if not c.running()), None)

    def wait_ready(self, *, health_url: str, children: list[Child], timeout: float) -> bool:
        """Until ``health_url`` answers 200 and each of ``children`` printed its ready marker.

        False when a child dies or time runs out (both said); True when asked to stop meanwhile.
        """
        deadline = time.monotonic() + timeout
        is_healthy = False
        while time.monotonic() < deadline and not self.stop.is_set():
            if (child := self.dead()) is not None:
                self.report_death(child)
                return False
            if not is_healthy:
                is_healthy = healthy(health_url)
            if is_healthy and all(c.ready.is_set() for c in children):
                return True
            self.stop.wait(0.3)
        if not self.stop.is_set():
            waiting = [c.name for c in children if not c.ready.is_set()]
            self.say(
                gettext("demo: not ready in %(seconds)g s (web healthy: %(healthy)s, waiting for: "
                  "%(waiting)s)")
                % {"seconds": timeout, "healthy": is_healthy, "waiting": ", ".join(waiting) or "-"}
            )  # fmt: skip
            return False
        return True

    def stop_all(self, *, order: list[str]) -> None:
        """Stops every child: ``order[0]`` first and alone, then the others in ``order``.

        Each program alone is asked to stop (SIGTERM); once it is gone, what it left behind is
        told to stop too; anything still running after ``STOP_TIMEOUT`` is killed, and the
        command checks that no process of any child's session is left.
        """
        started = [c for c in self.children if c.proc is not None]
        if not started:
            return
        rank = {name: n for n, name in enumerate(order)}
        started.sort(key=lambda c: rank.get(c.name, len(order)))
        first = started[0]
        if first.name == order[0] and first.running():
            assert first.proc is not None
            first.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                first.proc.wait(timeout=FIRST_STOP_TIMEOUT)

        # The trees as they are now: a worker's pool processes leave its tree (orphaned) when it
        # exits, so they are found before it is asked to stop.
        trees = {c.pid: session_members(c.pid) for c in started}
        owner = {proc.pid: c for c in started for proc in trees[c.pid]}
        began = time.monotonic()
        for child in started:
            if child.running():
                assert child.proc is not None
                child.proc.terminate()
            else:
                self.say(
                    gettext("demo: %(name)s stopped (%(seconds).1f s)")
                    % {"name": child.name, "seconds": 0.0}
                )

        def on_gone(proc: psutil.Process) -> None:
            child = owner.get(proc.pid)
            if child is None or proc.pid != child.pid:
                return
            self.say(
                gettext("demo: %(name)s stopped (%(seconds).1f s)")
                % {"name": child.name, "seconds": time.monotonic() - began}
            )
            for rest in trees[child.pid]:  # the program is gone: what it left, too
                if rest.pid != child.pid:
                    with contextlib.suppress(psutil.Error):
                        rest.terminate()

        everything = [proc for tree in trees.values() for proc in tree]
        _, alive = psutil.wait_procs(everything, timeout=STOP_TIMEOUT, callback=on_gone)
        for name in sorted({owner[proc.pid].name for proc in alive}):
            self.say(
                gettext("demo: %(name)s did not stop in %(seconds)g s: killing it")
                % {"name": name, "seconds": STOP_TIMEOUT}
            )
        for child in started:  # and whatever was started after the trees were taken
            for proc in session_members(child.pid):
                with contextlib.suppress(psutil.Error):
                    proc.kill()
        psutil.wait_procs(alive, timeout=5)
        for child in started:
            assert child.proc is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout=5)

        left = [c.name for c in started if group_alive(c.pid)]
        if left:
            self.say(gettext("demo: still running: %(names)s") % {"names": ", ".join(left)})
        else:
            names = ", ".join(f"{c.name} ({c.pid})" for c in started)
            self.say(gettext("demo: stopped %(names)s; no process left") % {"names": names})
