"""Plain-SQL writes for the hot paths (intake, decisions), portable to SQLite (the demo).

On these paths Django's query compilation cost several times the database's own work
(bench/decide, bench/pipeline). These helpers build each statement once per model and adapt
values exactly as Django would (field defaults, ``pre_save``, ``get_db_prep_save``).
"""

# Every SQL string here is built from model metadata (table and column names) only; values
# always travel as parameters.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Field, Model

M = TypeVar("M", bound=Model)


@cache
def _insert_plan(model: type[Model], vendor: str) -> tuple[str, tuple[Field, ...], str]:
    fields = tuple(f for f in model._meta.concrete_fields if not f.primary_key)
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    return f"INSERT INTO {model._meta.db_table} ({columns}) VALUES ", fields, row


def _values(instance: Model, fields: Sequence[Field]) -> list[Any]:
    return [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]


def row_insert(instance: M) -> M:
    """Inserts an unsaved ``instance`` in one statement and sets its primary key. Constraints
    hold as for ``save()``; no signals are sent (none are used on these models)."""
    head, fields, row = _insert_plan(type(instance), connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(f"{head}{row} RETURNING id", _values(instance, fields))
        instance.pk = cursor.fetchone()[0]
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


def rows_insert(instances: Sequence[Model], *, on_conflict: str = "") -> None:
    """Inserts ``instances`` (one model) in one multi-row statement; ``on_conflict`` is an
    optional ``ON CONFLICT ...`` clause. Primary keys are not read back."""
    if not instances:
        return
    head, fields, row = _insert_plan(type(instances[0]), connection.vendor)
    params = [value for instance in instances for value in _values(instance, fields)]
    with connection.cursor() as cursor:
        cursor.execute(f"{head}{', '.join([row] * len(instances))} {on_conflict}", params)
