"""Fixed-SQL lookups for the few queries every API request makes (see :class:`HotSelect`).

Kept free of DRF imports: authentication classes load while DRF itself is importing.
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import Model


class HotSelect:
    """A hand-written ``SELECT`` that loads model instances, for the few queries every request makes.

    The ORM spends about 1 ms of CPU compiling each query (joins, ordering, column lists) before
    sending it; token authentication and the room-and-membership lookup run on every API call, so
    they use a fixed SQL string instead (about 0.1 ms). Rows still go through each field's database
    converters, exactly as the ORM applies them, so values (aware datetimes, JSON, booleans on
    SQLite) are the same as from a queryset. Use only for simple, stable lookups.

    ``models`` are ``(model, table alias)`` pairs; ``sql`` is the query text with ``{columns}``
    where the select list goes (the concrete fields of each model in order).
    """

    def __init__(self, models: list[tuple[type[Model], str]], sql: str) -> None:
        self.models = models
        self._sql = sql
        self._prepared: tuple[str, list[list[tuple[Any, list[Any]]]]] | None = None

    def _prepare(self) -> tuple[str, list[list[tuple[Any, list[Any]]]]]:
        if self._prepared is None:
            qn = connection.ops.quote_name
            columns, converters = [], []
            for model, alias in self.models:
                per_field = []
                for f in model._meta.concrete_fields:
                    columns.append(f"{qn(alias)}.{qn(f.column)}")
                    col = f.get_col(alias)
                    per_field.append((col, connection.ops.get_db_converters(col) + f.get_db_converters(connection)))
                converters.append(per_field)
            self._prepared = (self._sql.format(columns=", ".join(columns)), converters)
        return self._prepared

    def first(self, params: list[Any]) -> list[Model] | None:
        """The first row as one instance per model (in ``models`` order), or None without a row."""
        sql, converters = self._prepare()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        instances: list[Model] = []
        at = 0
        for (model, _alias), per_field in zip(self.models, converters, strict=True):
            values = []
            for col, convs in per_field:
                value = row[at]
                at += 1
                for conv in convs:
                    value = conv(value, col, connection)
                values.append(value)
            instances.append(model.from_db(connection.alias, None, values))
        return instances
