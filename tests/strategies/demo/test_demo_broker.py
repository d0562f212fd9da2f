"""The demo's folder broker: a message file is never visible half-written.

With kombu's own filesystem transport this watcher sees dozens of empty or partial files out of
600 (the file is created, then written); a worker that picks one up dies on the JSON error.
"""

import json
import multiprocessing
import os
from pathlib import Path

from kombu import Connection

import atomsite.celery  # noqa: F401  (registers the atomic filesystem transport)
from atomsite.broker import Transport

PER_PRODUCER = 300


def produce(folder: str) -> None:
    # control_folder too: kombu's default is a "control" folder in the working directory.
    options = {"data_folder_in": folder, "data_folder_out": folder, "control_folder": folder}
    with Connection("filesystem://", transport_options=options) as conn:
        queue = conn.SimpleQueue("race")
        for i in range(PER_PRODUCER):
            queue.put({"n": i, "pad": "x" * 2000})


def test_filesystem_urls_use_the_atomic_transport(tmp_path):
    options = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
        "control_folder": str(tmp_path),
    }
    with Connection("filesystem://", transport_options=options) as conn:
        assert isinstance(conn.transport, Transport)


def test_a_reader_never_sees_a_partial_message_while_two_processes_publish(tmp_path):
    context = multiprocessing.get_context("fork")
    producers = [context.Process(target=produce, args=(str(tmp_path),)) for _ in range(2)]
    for p in producers:
        p.start()
    whole, partial = 0, []

    def read_all() -> None:
        nonlocal whole
        for name in os.listdir(tmp_path):
            if not name.endswith(".race.msg"):
                continue
            path = Path(tmp_path, name)
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            try:
                json.loads(data)
                whole += 1
            except ValueError:
                partial.append(data)
            path.unlink()

    while any(p.is_alive() for p in producers):
        read_all()
    for p in producers:
        p.join()
        assert p.exitcode == 0
    read_all()
    assert partial == []
    assert whole == 2 * PER_PRODUCER
