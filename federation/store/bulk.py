"""Writing many rows at once: PostgreSQL's ``COPY``, other databases' ``bulk_create``.

Django's ``bulk_create`` on PostgreSQL sends each column as one array parameter, and psycopg's
client-side binding quotes every element in Python: for 30,000 events that is most of the cost
of storing them. ``COPY ... FROM STDIN`` streams the same values through psycopg's C row
formatter instead (several times faster). The values are those ``bulk_create`` would write: each
field's ``pre_save`` (``auto_now`` and friends) then ``get_db_prep_save``, in the model's column
order; an auto-incremented primary key is left to the database (the instances do not learn it).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models


def insert_rows(model: type[models.Model], objs: Sequence[models.Model], *, batch_size: int = 1000) -> None:
    """Insert ``objs`` (new instances of ``model``) as ``bulk_create(objs)`` would.

    Guarantee: the same rows as ``model.objects.bulk_create(objs)``, in the caller's transaction;
    a conflict with an existing row raises ``IntegrityError`` as bulk_create does. On PostgreSQL
    with psycopg 3 the rows go through one ``COPY``; elsewhere through ``bulk_create``.
    Auto-incremented primary keys are not set on the instances.
    """
    if not objs:
        return
    if not _copy_available():
        model._default_manager.bulk_create(objs, batch_size=batch_size)
        return
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not (f.primary_key and isinstance(f, models.AutoField))]
    qn = connection.ops.quote_name
    sql = f"COPY {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) FROM STDIN"
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor under Django's wrapper
        with raw.copy(sql) as copy:
            for obj in objs:
                copy.write_row([f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields])


def _copy_available() -> bool:
    """PostgreSQL through psycopg 3 (whose cursors have ``copy``; psycopg2's do not)."""
    if connection.vendor != "postgresql":
        return False
    # Imported here: the module imports the PostgreSQL driver, absent from SQLite-only installs.
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return bool(is_psycopg3)
