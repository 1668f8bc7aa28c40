"""A fixed-SQL ``INSERT`` for a model saved on every request (see :class:`HotInsert`)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Model
from django.db.models.signals import post_save, pre_save

M = TypeVar("M", bound=Model)

# Rows per statement of insert_many (PostgreSQL takes at most 65,535 parameters in one statement).
_ROWS_PER_INSERT = 500


class HotInsert(Generic[M]):
    """Inserts new instances of one model with a ``INSERT`` whose text is built once.

    ``instance.save(force_insert=True)`` compiles the statement on every call (the insert query,
    its compiler, a placeholder and a prepared value per field): about a fifth of a
    ``chat.postMessage`` request's CPU. :meth:`insert` writes the same row: every concrete field,
    its value taken the way the ORM takes it (``pre_save`` with ``add=True``, so ``auto_now``
    fields are stamped, then ``get_db_prep_save``), and the instance is marked as saved.

    Exactly the ORM's behaviour is kept where it would differ: when ``pre_save``/``post_save`` has
    receivers for the model, the primary key is not set, or a field's value is an expression, the
    instance goes through ``save(force_insert=True)``. Only for concrete models without
    database-generated columns, parent models or a ``save()`` of their own: the constructor refuses
    others. The default database only (the project has no routers). As in ``save()``, a failed
    insert marks the open atomic block for rollback.
    """

    def __init__(self, model: type[M]) -> None:
        fields = list(model._meta.concrete_fields)
        if any(f.db_returning for f in fields) or model._meta.parents or model._meta.proxy \
                or model.save is not Model.save:
            raise ValueError(f"{model.__name__} has database-generated columns, parent models or its own "
                             "save(); use save()")
        self.model = model
        self._fields = fields
        self._sql: str | None = None

    def _statement(self) -> str:
        if self._sql is None:
            qn = connection.ops.quote_name
            columns = ", ".join(qn(f.column) for f in self._fields)
            placeholders = ", ".join(["%s"] * len(self._fields))
            self._sql = f"INSERT INTO {qn(self.model._meta.db_table)} ({columns}) VALUES ({placeholders})"
        return self._sql

    def _values(self, instance: M) -> list[Any] | None:
        """The row's values as ``save`` would write them; None where ``save`` must do it itself."""
        if pre_save.has_listeners(self.model) or post_save.has_listeners(self.model):
            return None
        return self._row(instance, "save")

    def _row(self, instance: M, operation: str) -> list[Any] | None:
        """The row's values as the ORM writes a new row; None for an instance without a primary key
        or with an expression for a value (the ORM must do it)."""
        if instance.pk is None:
            return None
        instance._prepare_related_fields_for_save(operation_name=operation)
        db = connections[DEFAULT_DB_ALIAS]  # the thread's connection itself: each use of the proxy is a lookup
        values: list[Any] = []
        for f in self._fields:
            value = f.pre_save(instance, True)
            if hasattr(value, "resolve_expression"):
                return None
            values.append(f.get_db_prep_save(value, db))
        return values

    def insert(self, instance: M) -> None:
        """Insert ``instance`` as a new row (IntegrityError if its key exists), as ``save`` would."""
        values = self._values(instance)
        if values is None:
            instance.save(force_insert=True)
            return
        with transaction.mark_for_rollback_on_error(), connection.cursor() as cursor:
            cursor.execute(self._statement(), values)
        self._mark_saved(instance)

    def deferred(self, instance: M, prefix: str) -> tuple[str, dict[str, Any]] | None:
        """The ``INSERT`` of ``instance`` as SQL with named parameters (``%(<prefix>_<i>)s``) and
        their values, for the caller to send with its next statement, in the same transaction; the
        instance is marked as saved now. None (nothing done) where ``save`` must do the insert:
        then call :meth:`insert`. The caller must send the statement before anything reads the row
        and inside the transaction it is part of, so that a failure undoes both."""
        values = self._values(instance)
        if values is None:
            return None
        names = [f"{prefix}_{i}" for i in range(len(values))]
        sql = self._statement() % tuple(f"%({n})s" for n in names)
        self._mark_saved(instance)
        return sql, dict(zip(names, values, strict=True))

    def insert_many(self, instances: list[M]) -> None:
        """Insert new rows as ``Model.objects.bulk_create(instances)`` would (no signals, every
        instance marked as saved; IntegrityError, and nothing inserted, if a key exists), with a
        statement text built once per row count instead of a compiled query and a prepared
        placeholder per value. Instances without a primary key, or with an expression for a value,
        go through ``bulk_create`` (all of them, so the rows stay in order)."""
        if not instances:
            return
        rows = [self._row(instance, "bulk_create") for instance in instances]
        if any(row is None for row in rows):
            self.model._default_manager.bulk_create(instances)
            return
        base = self._statement()
        one = base[base.index(" VALUES ") + len(" VALUES "):]
        with transaction.atomic(savepoint=False), connection.cursor() as cursor:  # as bulk_create: all or nothing
            for start in range(0, len(rows), _ROWS_PER_INSERT):
                chunk = rows[start:start + _ROWS_PER_INSERT]
                sql = base + "".join(", " + one for _ in chunk[1:])
                cursor.execute(sql, [value for row in chunk for value in row or ()])
        for instance in instances:
            self._mark_saved(instance)

    @staticmethod
    def _mark_saved(instance: Model) -> None:
        instance._state.adding = False
        instance._state.db = DEFAULT_DB_ALIAS
