"""The platform API keeps answering while the admin is flooded (RELIABILITY.md scenario 30).

The Procfile's two gunicorn pools (``web``, ``api``) run for real on the test database, behind
nginx with the shipped ``deploy/nginx.conf`` (on loopback ports, with a throw-away certificate).
Then the admin is attacked all at once: a login flood through the proxy, slow-body clients
through the proxy, and slow-body clients straight at the web pool until every one of its
workers is stuck. Signed intake calls through the proxy are still answered within a bound; the
proxy refuses oversized bodies and headers itself and drops a client whose body stalls.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import urllib3
from django.conf import settings

from tests.factories import make_membership, make_shop
from tests.strategies.platforms.generic.api_client import CREATE_URL, encode, headers_for, payload
from tests.worker import worker_database_url

ROOT = Path(__file__).resolve().parent.parent
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
# The API's answer under attack: every call within this, and half of them much faster.
API_MAX_SECONDS = 2.0
API_MEDIAN_SECONDS = 0.5

pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, *, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{process.args} exited with {process.returncode}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"nothing listens on {port} after {timeout}s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def procfile_line(name: str) -> str:
    lines = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines())
    return lines[name].strip()


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if not found:
        pytest.fail(
            "nginx not found: this test runs deploy/nginx.conf for real "
            "(`apt-get install -y nginx`; .ci/run installs it).",
            pytrace=False,
        )
    return found


@dataclass
class Site:
    https_port: int
    web_port: int
    api_port: int
    logs: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"


@pytest.fixture
def shop_with_owner(db):
    shop = make_shop(code="pool-shop", name="Pool shop")
    make_membership(shop=shop, username="pool-owner")
    return shop


@pytest.fixture
def site(redis_broker, shop_with_owner) -> Iterator[Site]:
    """Both gunicorn pools as the Procfile starts them, and nginx with deploy/nginx.conf."""
    nginx = nginx_binary()
    work = Path(tempfile.mkdtemp(prefix="atom-nginx-"))
    work.chmod(0o777)  # nginx's workers (nobody, when started as root) write temp files here
    ports = {"web": free_port(), "api": free_port(), "http": free_port(), "https": free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        # This checkout, not whatever tree the venv's editable install maps.
        PYTHONPATH=str(ROOT),
        DATABASE_URL=worker_database_url(),
        CELERY_BROKER_URL=redis_broker,
        DEBUG="false",
        # The test's own key: shop secrets are sealed with a key derived from it.
        SECRET_KEY=settings.SECRET_KEY,
        ALLOWED_HOSTS="*",
        ATOM_CLIENT_IP_HEADER="HTTP_X_REAL_IP",
        PORT=str(ports["web"]),
        API_PORT=str(ports["api"]),
        WEB_CONCURRENCY="2",
        API_CONCURRENCY="2",
        LOG_LEVEL="WARNING",
    )
    processes: list[subprocess.Popen] = []
    logs = []
    try:
        for name in ("web", "api"):
            log = (work / f"{name}.log").open("w")
            logs.append(log)
            processes.append(
                subprocess.Popen(
                    ["bash", "-c", f"exec {procfile_line(name)}"],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=localhost", "-keyout", str(work / "key.pem"),
             "-out", str(work / "cert.pem")],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        conf = NGINX_CONF.read_text()
        for shipped, local in {
            "server 127.0.0.1:8000;": f"server 127.0.0.1:{ports['web']};",
            "server 127.0.0.1:8100;": f"server 127.0.0.1:{ports['api']};",
            "listen 80;": f"listen 127.0.0.1:{ports['http']};",
            "listen 443 ssl;": f"listen 127.0.0.1:{ports['https']} ssl;",
            "/etc/ssl/atom/fullchain.pem": str(work / "cert.pem"),
            "/etc/ssl/atom/privkey.pem": str(work / "key.pem"),
        }.items():
            assert conf.count(shipped) == 1, f"deploy/nginx.conf no longer has {shipped!r}"
            conf = conf.replace(shipped, local)
        (work / "atom.conf").write_text(conf)
        temp_paths = "".join(
            f"  {kind}_temp_path {work / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (work / "nginx.conf").write_text(
            f"pid {work}/nginx.pid;\n"
            f"error_log {work}/error.log warn;\n"
            "worker_processes 1;\n"
            "events { worker_connections 512; }\n"
            f"http {{\n  access_log {work}/access.log;\n{temp_paths}"
            f"  include {work}/atom.conf;\n}}\n"
        )
        args = [
            nginx,
            "-p",
            str(work),
            "-e",
            str(work / "error.log"),
            "-c",
            str(work / "nginx.conf"),
        ]
        checked = subprocess.run([*args, "-t"], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stderr
        processes.append(subprocess.Popen([*args, "-g", "daemon off;"], stderr=subprocess.DEVNULL))

        for port, process in zip(
            (ports["web"], ports["api"], ports["https"]), processes, strict=True
        ):
            wait_for_port(port, process=process)
        for port in (ports["web"], ports["api"]):  # Django loaded in the workers
            deadline = time.monotonic() + 30
            while requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code != 200:
                assert time.monotonic() < deadline, (work / "web.log").read_text()
                time.sleep(0.2)
        yield Site(
            https_port=ports["https"], web_port=ports["web"], api_port=ports["api"], logs=work
        )
    finally:
        for process in reversed(processes):
            stop(process)
        for log in logs:
            log.close()
        shutil.rmtree(work, ignore_errors=True)


def tls_socket(port: int) -> ssl.SSLSocket:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5))


def slow_body_client(port: int, path: str, done: threading.Event, *, tls: bool) -> None:
    """Sends a POST's headers, then its body a byte at a time, until ``done``."""
    sock: socket.socket = tls_socket(port) if tls else socket.create_connection(("127.0.0.1", port))
    with sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: atom.example.com\r\n"
            # As the proxy and a browser send them: else the HTTPS redirect or a CSRF check
            # answers before the body is read, and the worker is free again.
            "X-Forwarded-Proto: https\r\nOrigin: https://atom.example.com\r\n"
            f"Cookie: csrftoken={'a' * 32}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            "Content-Length: 100000\r\n\r\n".encode()
        )
        while not done.wait(0.5):
            try:
                sock.sendall(b"a")
            except OSError:
                return


def login_flood(url: str, done: threading.Event, statuses: Counter) -> None:
    session = requests.Session()
    n = 0
    while not done.is_set():
        n += 1
        try:
            answer = session.post(
                f"{url}/admin/login/",
                data={"username": f"user{n % 7}", "password": f"guess-{n}"},
                timeout=2,
                verify=False,  # per call: REQUESTS_CA_BUNDLE would override a session's
            )
            statuses[answer.status_code] += 1
        except requests.RequestException:
            statuses["no answer in 2 s"] += 1


def intake(session: requests.Session, url: str, shop, n: int) -> tuple[int, float]:
    body = encode(payload(aftersale_id=f"AS-POOL-{n}", order={"order_id": f"OD-POOL-{n}"}))
    started = time.monotonic()
    answer = session.post(
        f"{url}{CREATE_URL}",
        data=body,
        headers={**headers_for(shop, body), "Content-Type": "application/json"},
        timeout=10,
        verify=False,
    )
    return answer.status_code, time.monotonic() - started


def stalled_api_client(port: int, result: dict) -> None:
    """Sends an intake call's headers and one byte of its body, then nothing: how long until
    the proxy drops it (client_body_timeout), and what it says."""
    with tls_socket(port) as sock:
        sock.sendall(
            f"POST {CREATE_URL} HTTP/1.1\r\nHost: atom.example.com\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode()
        )
        stalled = time.monotonic()
        sock.settimeout(20)
        try:
            result["answer"] = sock.recv(200)
        except (ConnectionResetError, ssl.SSLError):
            result["answer"] = b""
        result["waited"] = time.monotonic() - stalled


def test_the_api_answers_while_the_admin_is_flooded_and_its_pool_is_stuck(site, shop_with_owner):
    warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
    api = requests.Session()
    assert intake(api, site.url, shop_with_owner, 0)[0] == 202  # the path works at all
    # What no platform sends is refused by the proxy itself.
    big = api.post(
        f"{site.url}{CREATE_URL}", data=b"{" + b" " * 70_000 + b"}", verify=False, timeout=10
    )
    assert big.status_code == 413  # client_max_body_size for /api/: 64k
    huge_header = api.get(
        f"{site.url}/admin/login/", headers={"X-Filler": "x" * 10_000}, verify=False, timeout=10
    )
    assert huge_header.status_code == 400  # large_client_header_buffers 4 8k

    done = threading.Event()
    flood: Counter = Counter()
    stall: dict = {}
    attackers = [
        # Slow bodies through the proxy: nginx holds them, no worker sees them.
        *(
            threading.Thread(
                target=slow_body_client, args=(site.https_port, "/i18n/setlang/", done),
                kwargs={"tls": True},
            )
            for _ in range(8)
        ),
        # Slow bodies straight at the web pool: every one of its workers is stuck reading.
        *(
            threading.Thread(
                target=slow_body_client, args=(site.web_port, "/admin/login/", done),
                kwargs={"tls": False},
            )
            for _ in range(4)
        ),
        # The login flood through the proxy.
        *(threading.Thread(target=login_flood, args=(site.url, done, flood)) for _ in range(6)),
        # An intake call whose body never comes.
        threading.Thread(target=stalled_api_client, args=(site.https_port, stall)),
    ]  # fmt: skip
    for thread in attackers:
        thread.start()
    try:
        time.sleep(1.5)
        # The admin's pool is down: its workers are all held by slow clients.
        with pytest.raises(requests.exceptions.Timeout):
            requests.get(f"http://127.0.0.1:{site.web_port}/healthz", timeout=1.5)

        answers = [intake(api, site.url, shop_with_owner, n) for n in range(1, 21)]
    finally:
        done.set()
        for thread in attackers:
            thread.join(timeout=25)

    statuses = {status for status, _ in answers}
    latencies = sorted(seconds for _, seconds in answers)
    assert statuses == {202}, answers
    assert latencies[-1] < API_MAX_SECONDS, latencies
    assert statistics.median(latencies) < API_MEDIAN_SECONDS, latencies
    # The flood met nginx's login rate limit: most tries never reached a worker.
    assert flood[429] > 0 and flood[429] >= sum(flood.values()) // 2, flood
    # The stalled call was dropped by the proxy after client_body_timeout (10 s), and never
    # reached the api pool: it logged exactly the 21 whole intake calls (nginx buffers bodies).
    assert 8 <= stall["waited"] <= 15, stall
    assert stall["answer"] == b"" or re.match(rb"HTTP/1\.[01] 408", stall["answer"]), stall
    assert (site.logs / "api.log").read_text().count(f"POST {CREATE_URL} ") == 21
