"""Two kombu transports made to fit: the demo's folder broker and a leaner Redis channel.

The demo's broker: kombu's filesystem transport, with an atomic publish.

kombu's own ``_put`` creates the message file, then writes it; a worker listing the folder in
between moves the still empty file away, fails to decode it and dies (seen within two minutes
of ``make demo``). Here a message is written under a name no queue matches, then renamed into
place: a reader sees the whole file or nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from time import monotonic
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.transport import redis as redis_transport
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # A leading dot: `_get` matches on the text after the first dot, so it skips this file.
        partial = os.path.join(self.data_folder_out, f".{uuid.uuid4()}.part")
        try:
            with open(partial, "wb", buffering=0) as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


def use_atomic_filesystem_transport() -> None:
    """Makes ``filesystem://`` mean this transport in this process (call before connecting)."""
    TRANSPORT_ALIASES["filesystem"] = "atomsite.broker:Transport"


class RedisChannel(redis_transport.Channel):
    """kombu's Redis channel with one client per connection pool instead of one per command.

    kombu builds a new ``redis.Redis`` for every command it sends outside BRPOP (each publish,
    each QoS bookkeeping call of a worker's ack), and building one fills ~170 response callbacks:
    a fifth of a publish's CPU (issue 16). A ``redis.Redis`` on a pool holds no connection of its
    own, so one per pool sends exactly what kombu's did; keyed by the pool, so the new pool kombu
    makes after a fork or a disconnect gets a new client.
    """

    _client_for_pool: tuple[Any, Any] | None = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        pool = self.pool
        cached = self._client_for_pool
        if cached is None or cached[0] is not pool:
            cached = (pool, self._create_client())
            self._client_for_pool = cached
        yield cached[1]


class RedisTransport(redis_transport.Transport):
    Channel = RedisChannel


def use_lean_redis_transport() -> None:
    """Makes ``redis://`` and ``rediss://`` mean ``RedisTransport`` in this process."""
    TRANSPORT_ALIASES["redis"] = "atomsite.broker:RedisTransport"
    TRANSPORT_ALIASES["rediss"] = "atomsite.broker:RedisTransport"
