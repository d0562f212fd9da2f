"""/healthz: 200 when the database and the broker answer, 503 when the broker does not; only a
caller with the health token learns which dependency failed."""

import socket

import pytest


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: nothing listens


TOKEN = "health-token-for-tests-0123456789"


@pytest.fixture
def health_token(settings):
    settings.ATOM_HEALTH_TOKEN = TOKEN
    return {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def broker_down(monkeypatch):
    # Celery reads CELERY_BROKER_WRITE_URL from the environment first: a real closed port.
    monkeypatch.setenv("CELERY_BROKER_WRITE_URL", f"redis://127.0.0.1:{closed_port()}/0")


@pytest.mark.django_db
def test_it_answers_200_when_the_database_and_redis_answer(client, health_token):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"
    detailed = client.get("/healthz", headers=health_token)
    assert detailed.json() == {"status": "ok", "database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_it_answers_503_when_the_broker_is_unreachable(client, health_token, broker_down):
    response = client.get("/healthz", headers=health_token)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error" and body["database"] == "ok"
    assert body["broker"].startswith("error")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "],
)
def test_without_the_token_it_says_not_ok_and_nothing_more(
    client, health_token, broker_down, authorization
):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/healthz", headers=headers)
    assert response.status_code == 503
    assert response.json() == {"status": "error"}


@pytest.mark.django_db
def test_no_token_configured_means_no_one_gets_the_details(client, settings, broker_down):
    settings.ATOM_HEALTH_TOKEN = ""
    response = client.get("/healthz", headers={"Authorization": "Bearer "})
    assert response.status_code == 503
    assert response.json() == {"status": "error"}


@pytest.mark.django_db
def test_it_answers_any_host_over_plain_http(client, settings):
    # A load balancer probes by IP over HTTP: no 400 for the host, no redirect to HTTPS.
    settings.ALLOWED_HOSTS = ["atom.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz", HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert client.get("/admin/", HTTP_HOST="10.1.2.3:8000").status_code == 400
