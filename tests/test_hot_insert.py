"""chat.hot_insert: the fixed INSERT writes exactly the row ``save(force_insert=True)`` writes, and
falls back to ``save`` where the ORM would do more."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, models, transaction
from django.db.models.signals import pre_save
from django.utils import timezone

from chat.hot_insert import HotInsert
from rooms.actions.rooms import do_create_room
from rooms.models import Message

pytestmark = pytest.mark.django_db


def _row(message_id: str) -> dict[str, Any]:
    return Message.objects.filter(id=message_id).values().get()


def _pair(make_user: Any) -> tuple[Message, Message]:
    alice = make_user("alice")
    room = do_create_room(alice, "c", "hot-insert")
    root = Message.objects.create(room=room, user=alice, text="root")
    created = timezone.now() - timedelta(days=2)

    def build(message_id: str) -> Message:
        return Message(id=message_id, room=room, user=alice, text="hi **there**", html="<p>hi</p>",
                       created_at=created, thread_root=root, attachments=[{"title": "a", "n": [1, 2]}],
                       alias="al", emoji=":x:", show_in_room=False, mentions_all=True)
    return build("by-hot-insert"), build("by-save")


def test_the_row_is_the_one_save_writes(make_user: Any) -> None:
    hot, saved = _pair(make_user)
    before = timezone.now()
    HotInsert(Message).insert(hot)
    saved.save(force_insert=True)
    assert hot._state.adding is False and hot._state.db == "default"
    a, b = _row("by-hot-insert"), _row("by-save")
    assert before <= a["updated_at"] <= timezone.now()  # auto_now stamped, as save() does
    assert a["updated_at"] == hot.updated_at
    for row in (a, b):
        row.pop("id")
        row.pop("updated_at")
    assert a == b
    assert a["attachments"] == [{"title": "a", "n": [1, 2]}]
    assert Message.objects.get(id="by-hot-insert").thread_root_id == saved.thread_root_id


def test_a_taken_key_is_refused(make_user: Any) -> None:
    hot, _saved = _pair(make_user)
    inserter = HotInsert(Message)
    inserter.insert(hot)
    hot._state.adding = True
    with pytest.raises(IntegrityError), transaction.atomic():
        inserter.insert(hot)
    assert Message.objects.filter(id="by-hot-insert").count() == 1


def test_receivers_of_pre_save_get_the_orm_path(make_user: Any) -> None:
    hot, _saved = _pair(make_user)
    seen: list[str] = []

    def receiver(sender: Any, instance: Message, **kwargs: Any) -> None:
        seen.append(instance.id)

    pre_save.connect(receiver, sender=Message, dispatch_uid="test-hot-insert")
    try:
        HotInsert(Message).insert(hot)
    finally:
        pre_save.disconnect(dispatch_uid="test-hot-insert", sender=Message)
    assert seen == ["by-hot-insert"]
    assert _row("by-hot-insert")["text"] == "hi **there**"


def test_models_with_database_generated_keys_are_refused() -> None:
    from rooms.models import Mention  # an AutoField primary key

    assert isinstance(Mention._meta.pk, models.AutoField | models.BigAutoField)
    with pytest.raises(ValueError, match="database-generated"):
        HotInsert(Mention)


def test_insert_many_writes_the_rows_bulk_create_writes(make_user: Any, monkeypatch: Any) -> None:
    hot, saved = _pair(make_user)
    room, alice, root = hot.room, hot.user, hot.thread_root

    def build(prefix: str, n: int) -> list[Message]:
        return [Message(id=f"{prefix}-{i}", room=room, user=alice, text=f"t{i}", html=f"<p>t{i}</p>",
                        created_at=hot.created_at, thread_root=root if i % 2 else None,
                        attachments=[{"i": i}], show_in_room=bool(i % 3)) for i in range(n)]

    import chat.hot_insert

    monkeypatch.setattr(chat.hot_insert, "_ROWS_PER_INSERT", 3)  # several statements for 7 rows
    many, bulk = build("many", 7), build("bulk", 7)
    HotInsert(Message).insert_many(many)
    Message.objects.bulk_create(bulk)
    assert all(m._state.adding is False and m._state.db == "default" for m in many)
    for i in range(7):
        a, b = _row(f"many-{i}"), _row(f"bulk-{i}")
        for row in (a, b):
            row.pop("id")
            row.pop("updated_at")
        assert a == b
    assert Message.objects.get(id="many-1").attachments == [{"i": 1}]


def test_insert_many_inserts_nothing_when_a_key_is_taken_and_falls_back_without_keys(make_user: Any) -> None:
    hot, saved = _pair(make_user)
    HotInsert(Message).insert(saved)
    clash = Message(id="by-save", room=hot.room, user=hot.user, text="again")
    with pytest.raises(IntegrityError), transaction.atomic():
        HotInsert(Message).insert_many([hot, clash])
    assert not Message.objects.filter(id="by-hot-insert").exists()
    keyless = Message(room=hot.room, user=hot.user, text="no key yet")
    keyless.id = None
    HotInsert(Message).insert_many([hot, keyless])  # bulk_create for both: it gives the key
    assert keyless.id and Message.objects.filter(id__in=["by-hot-insert", keyless.id]).count() == 2
