"""The lean publish (issue 16) sends exactly the message Celery's ``send_task`` sends, on both
brokers, declares the queue once per connection, and the Redis channel builds one client per
connection pool instead of one per command.

Every comparison reads the two messages back from the real broker: Redis' list, RabbitMQ's
queue on the tests' own vhost.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import current_app
from kombu import Connection, Queue

import strategies.tasks  # the tasks registered, with their options (time limits), as in a worker
from atomsite.broker import RedisChannel
from bench.chaos.core import broker as pointing_at
from strategies.pipeline import publish

QUEUE = "celery"
# Every task name the application publishes, so a task given options later (a time limit, a
# queue, a priority) is compared too.
TASK_NAMES = sorted(
    value
    for name, value in vars(publish).items()
    if name.endswith("_TASK") and isinstance(value, str)
)
# What differs between any two messages: their ids, and the broker's delivery tag.
PER_MESSAGE_HEADERS = ("id", "root_id")
PER_MESSAGE_PROPERTIES = ("correlation_id", "delivery_tag")


@pytest.fixture
def redis_queue(redis_broker) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_broker)
    with pointing_at(redis_broker):
        yield client
    client.close()


def comparable(
    headers: dict, properties: dict, body: Any, *, in_task: bool = False
) -> dict[str, Any]:
    """A message less what differs between any two sends of the same call."""
    assert headers["id"] == properties["correlation_id"]
    if not in_task:
        assert headers["root_id"] == headers["id"]
    else:  # the trace ids of the task that published it
        headers = {k: v for k, v in headers.items() if k != "root_id"}
    return {
        "headers": {k: v for k, v in headers.items() if k not in PER_MESSAGE_HEADERS},
        "properties": {k: v for k, v in properties.items() if k not in PER_MESSAGE_PROPERTIES},
        "body": body,
    }


def from_redis(raw: bytes, *, in_task: bool = False) -> dict[str, Any]:
    message = json.loads(raw)
    body = json.loads(base64.b64decode(message.pop("body")))
    headers = message.pop("headers")
    properties = message.pop("properties")
    properties.pop("body_encoding")
    return {**comparable(headers, properties, body, in_task=in_task), "envelope": message}


@pytest.mark.parametrize("name", TASK_NAMES)
def test_on_redis_it_sends_what_send_task_sends(redis_queue, name):
    assert publish.publish_now(name, [7, 8])
    current_app.send_task(name, args=[7, 8])

    celery_sent, lean_sent = redis_queue.lrange(QUEUE, 0, -1)  # LPUSH: the newest first
    assert from_redis(lean_sent) == from_redis(celery_sent)
    assert json.loads(base64.b64decode(json.loads(lean_sent)["body"]))[0] == [7, 8]


@pytest.mark.worker
@pytest.mark.parametrize("name", [publish.DECIDE_TASK, publish.BACKTEST_TASK])
def test_on_rabbitmq_it_sends_what_send_task_sends(rabbitmq, name):
    # BACKTEST_TASK: a task with its own time limits, which travel in the headers.
    assert publish.publish_now(name, [7, 8])
    current_app.send_task(name, args=[7, 8])

    received = []
    with Connection(rabbitmq) as conn, conn.channel() as channel:
        for _ in range(2):
            message = channel.basic_get(QUEUE, no_ack=True)
            assert message is not None
            received.append(
                {
                    **comparable(
                        dict(message.headers),
                        {  # its application_headers are the headers compared above
                            k: v
                            for k, v in message.properties.items()
                            if k != "application_headers"
                        },
                        json.loads(message.body),
                    ),
                    "content_type": message.content_type,
                    "content_encoding": message.content_encoding,
                    "delivery_info": {
                        k: message.delivery_info[k] for k in ("exchange", "routing_key")
                    },
                }
            )
    lean, celery_own = received
    assert lean == celery_own
    assert lean["body"][0] == [7, 8]
    if name == publish.BACKTEST_TASK:
        limits = [strategies.tasks.BACKTEST_TIME_LIMIT, strategies.tasks.BACKTEST_SOFT_TIME_LIMIT]
        assert lean["headers"]["timelimit"] == limits


def test_published_from_a_running_task_it_carries_the_tasks_trace_ids(redis_queue):
    from celery._state import _task_stack

    task = current_app.tasks[publish.DECIDE_TASK]
    task.push_request(id="parent-id", root_id="root-id", called_directly=False)
    _task_stack.push(task)
    try:
        assert publish.publish_now(publish.EXECUTE_TASK, [5])
        current_app.send_task(publish.EXECUTE_TASK, args=[5])
    finally:
        _task_stack.pop()
        task.pop_request()

    celery_sent, lean_sent = redis_queue.lrange(QUEUE, 0, -1)
    assert from_redis(lean_sent, in_task=True) == from_redis(celery_sent, in_task=True)
    headers = json.loads(lean_sent)["headers"]
    assert (headers["root_id"], headers["parent_id"]) == ("root-id", "parent-id")


def test_a_task_with_options_it_does_not_mirror_keeps_send_task(redis_queue, monkeypatch):
    # An expiry (or a queue, an exchange, a priority) is left to Celery: the message still
    # carries it.
    monkeypatch.setattr(current_app.tasks[publish.SWEEP_TASK], "expires", 60)
    monkeypatch.setattr(current_app.tasks[publish.SWEEP_TASK], "_exec_options", None)
    monkeypatch.setattr(publish, "_templates", {})  # built anew here, the others' restored after
    assert publish.publish_now(publish.SWEEP_TASK, [])
    (raw,) = redis_queue.lrange(QUEUE, 0, -1)
    assert json.loads(raw)["headers"]["expires"] is not None


@pytest.mark.worker
def test_on_rabbitmq_a_publish_that_reconnects_declares_the_queue_again(rabbitmq, monkeypatch):
    # The queue is declared by the first publish; then RabbitMQ loses it (a node rebuilt) and
    # the next publish's first attempt meets a broken connection. kombu reconnects inside its
    # retry, forgetting what it declared, and retries with the first attempt's list of what to
    # declare (empty): the message must still land in a queue, not be dropped.
    from kombu.messaging import Producer

    assert publish.publish_now(publish.DECIDE_TASK, [1])
    with Connection(rabbitmq) as conn, conn.channel() as channel:
        channel.queue_delete(QUEUE)
    attempts: list[list] = []
    original = Producer._publish

    def breaking_once(self, *args, **kwargs):
        attempts.append(list(args[10]))  # what this attempt declares
        if len(attempts) == 1:
            raise ConnectionResetError("the broker went away")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Producer, "_publish", breaking_once)
    assert publish.publish_now(publish.DECIDE_TASK, [2])
    assert attempts == [[], []]  # declared on neither attempt: by the reconnection itself

    with Connection(rabbitmq) as conn, conn.channel() as channel:
        message = channel.basic_get(QUEUE, no_ack=True)  # fails if the queue was not declared
        assert message is not None
        assert json.loads(message.body)[0] == [2]


def test_a_delayed_publish_carries_its_eta(redis_queue):
    assert publish.publish_now(publish.DECIDE_TASK, [3], countdown=30)
    (raw,) = redis_queue.lrange(QUEUE, 0, -1)
    headers = json.loads(raw)["headers"]
    assert headers["task"] == publish.DECIDE_TASK
    assert headers["eta"] is not None


def test_the_queue_is_declared_once_per_broker_connection(redis_queue, monkeypatch):
    # As Celery's own declaration cache: the first publish on a connection declares the queue,
    # the next ones do not, and a connection that forgot (kombu clears it on reconnecting)
    # declares it again.
    declared: list[str] = []
    original = Queue.declare

    def counting(self, *args, **kwargs):
        declared.append(self.name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Queue, "declare", counting)
    for request_id in (1, 2, 3):
        assert publish.publish_now(publish.DECIDE_TASK, [request_id])
    assert declared == [QUEUE]
    assert redis_queue.llen(QUEUE) == 3

    with publish.pools.producers[publish._write_connection()].acquire(block=True) as producer:
        producer.connection.declared_entities.clear()
    assert publish.publish_now(publish.DECIDE_TASK, [4])
    assert declared == [QUEUE, QUEUE]
    assert redis_queue.llen(QUEUE) == 4


def test_the_redis_channel_builds_one_client_per_connection_pool(redis_queue, monkeypatch):
    built: list[Any] = []
    original = RedisChannel._create_client

    def counting(self, asynchronous=False):
        client = original(self, asynchronous=asynchronous)
        built.append((self, asynchronous))
        return client

    monkeypatch.setattr(RedisChannel, "_create_client", counting)
    for request_id in range(1, 21):
        assert publish.publish_now(publish.DECIDE_TASK, [request_id])
    assert redis_queue.llen(QUEUE) == 20
    # kombu's own channel built one synchronous client per command: 20 for 20 publishes.
    synchronous = [channel for channel, asynchronous in built if not asynchronous]
    assert len(synchronous) == len(set(synchronous)) <= 2

    # kombu drops the pool after a fork or a disconnect: the next command gets a new client on
    # the new pool, and the publish still arrives.
    with publish.pools.producers[publish._write_connection()].acquire(block=True) as producer:
        producer.channel._disconnect_pools()
    built.clear()
    assert publish.publish_now(publish.DECIDE_TASK, [21])
    assert [asynchronous for _, asynchronous in built] == [False]
    assert redis_queue.llen(QUEUE) == 21
