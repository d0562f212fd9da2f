"""The demo's broker: kombu's filesystem transport, with an atomic publish.

kombu's own ``_put`` creates the message file, then writes it; a worker listing the folder in
between moves the still empty file away, fails to decode it and dies (seen within two minutes
of ``make demo``). Here a message is written under a name no queue matches, then renamed into
place: a reader sees the whole file or nothing.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, filesystem
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
