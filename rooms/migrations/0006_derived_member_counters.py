"""Members' counters derive from the room's (see the docstring of :mod:`rooms.models.rooms`).

Existing counts are kept exactly: the stored ``unread``/``group_mentions``/``open`` become the
settled bases, the room's new counters are filled from its history and every member's markers are
set to them, so nothing derives yet and each member shows what it showed before. The reverse
folds what derived since into the stored counts again.
"""

from django.db import migrations, models
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce


def _count(Message, condition):  # type: ignore[no-untyped-def]
    per_room = (Message.objects.filter(condition, room=OuterRef("pk"), type="").order_by().values("room")
                .annotate(n=Count("pk")).values("n"))
    return Coalesce(Subquery(per_room), 0)


def _forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    Room = apps.get_model("rooms", "Room")
    Membership = apps.get_model("rooms", "Membership")
    Message = apps.get_model("rooms", "Message")
    Room.objects.update(shown_count=_count(Message, Q(show_in_room=True)),
                        group_mention_count=_count(Message, Q(mentions_all=True) | Q(mentions_here=True)))
    rooms = Room.objects.filter(pk=OuterRef("room_id"))
    Membership.objects.update(seen_shown=Subquery(rooms.values("shown_count")[:1]),
                              seen_group=Subquery(rooms.values("group_mention_count")[:1]))


def _backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    Membership = apps.get_model("rooms", "Membership")
    for sub in Membership.objects.filter(state="joined").select_related("room").iterator():
        shown = max(0, sub.room.shown_count - sub.seen_shown)
        group = max(0, sub.room.group_mention_count - sub.seen_group)
        if shown or group:
            Membership.objects.filter(pk=sub.pk).update(unread_base=sub.unread_base + shown,
                                                        group_mentions_base=sub.group_mentions_base + group,
                                                        open_flag=sub.open_flag or shown > 0)


class Migration(migrations.Migration):

    dependencies = [
        ('rooms', '0005_join_code'),
    ]

    operations = [
        migrations.RenameField(model_name='membership', old_name='unread', new_name='unread_base'),
        migrations.RenameField(model_name='membership', old_name='group_mentions', new_name='group_mentions_base'),
        migrations.RenameField(model_name='membership', old_name='open', new_name='open_flag'),
        migrations.AddField(
            model_name='membership',
            name='seen_shown',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='membership',
            name='seen_group',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='room',
            name='shown_count',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='room',
            name='group_mention_count',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='room',
            name='counters_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(_forward, _backward),
    ]
