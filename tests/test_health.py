"""/healthz: 200 when the database and the broker answer, 503 when the broker does not."""

import socket

import pytest


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: nothing listens


@pytest.mark.django_db
def test_it_answers_200_when_the_database_and_redis_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_it_answers_503_when_the_broker_is_unreachable(client, monkeypatch):
    # Celery reads CELERY_BROKER_WRITE_URL from the environment first: a real closed port.
    monkeypatch.setenv("CELERY_BROKER_WRITE_URL", f"redis://127.0.0.1:{closed_port()}/0")
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error" and body["database"] == "ok"
    assert body["broker"].startswith("error")


@pytest.mark.django_db
def test_it_answers_any_host_over_plain_http(client, settings):
    # A load balancer probes by IP over HTTP: no 400 for the host, no redirect to HTTPS.
    settings.ALLOWED_HOSTS = ["atom.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz", HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert client.get("/admin/", HTTP_HOST="10.1.2.3:8000").status_code == 400
