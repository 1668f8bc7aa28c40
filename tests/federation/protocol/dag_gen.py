"""Random but valid room DAGs, for property and differential tests.

A room starts with the usual create / join / power levels / join rules, then
grows by random actions on a few branches (forks of the DAG); branches are
sometimes merged by resolving their states.  Each candidate event is kept
only if our auth rules allow it against its branch's state, so the result is
a DAG a real server could hold.  Everything is driven by one ``random.Random``
so a seed reproduces a room.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from federation.protocol import (
    AuthError,
    Event,
    RoomVersion,
    check_auth_rules,
    resolve_state,
)

from .roomkit import Room, fork

USERS = ["@alice:a.test", "@bob:b.test", "@carol:c.test", "@dave:a.test", "@erin:e.test"]
JOIN_RULES = ["public", "invite", "knock", "restricted", "knock_restricted"]
LEVELS = [0, 10, 50, 75, 100]


@dataclass
class GeneratedRoom:
    room: Room
    branches: list[Room]
    merges: list[tuple[list[dict[tuple[str, str], str]], dict[tuple[str, str], str]]] = field(
        default_factory=list
    )
    """Each merge: the states that were resolved, and our result."""


def random_levels_content(rng: random.Random, rv: RoomVersion, creator: str) -> dict[str, Any]:
    users = {u: rng.choice(LEVELS) for u in rng.sample(USERS, rng.randint(1, 4))}
    if rv.creators_infinite_power:
        users.pop(creator, None)
    else:
        users[creator] = 100
    content: dict[str, Any] = {"users": users}
    for name in ("ban", "kick", "invite", "redact", "state_default", "events_default", "users_default"):
        if rng.random() < 0.3:
            content[name] = rng.choice(LEVELS)
    if rng.random() < 0.3:
        content["events"] = {"m.room.name": rng.choice(LEVELS), "m.room.topic": rng.choice(LEVELS)}
    return content


def candidate(rng: random.Random, branch: Room, ts: int) -> Event:
    """A random event on ``branch`` (often one the auth rules will reject)."""
    rv = branch.rv
    sender = rng.choice(USERS)
    target = rng.choice(USERS)
    kind = rng.random()
    kw: dict[str, Any] = {"ts": ts}
    if kind < 0.45:
        membership = rng.choice(["join", "join", "leave", "invite", "ban", "knock", "leave"])
        if membership in ("join", "knock"):
            target = sender
        content: dict[str, Any] = {"membership": membership}
        cosigners: list[str] = []
        if membership == "join" and rng.random() < 0.4:
            authoriser = rng.choice(USERS)
            content["join_authorised_via_users_server"] = authoriser
            cosigners.append(authoriser.split(":", 1)[1])
        if rng.random() < 0.2:
            content["displayname"] = f"name{rng.randint(0, 9)}"
        return branch.make(sender, "m.room.member", content, target, cosigners=cosigners, **kw)
    if kind < 0.6:
        return branch.make(sender, "m.room.power_levels", random_levels_content(rng, rv, branch.creator), "", **kw)
    if kind < 0.7:
        rule = rng.choice(JOIN_RULES)
        content = {"join_rule": rule}
        if "restricted" in rule:
            content["allow"] = [{"type": "m.room_membership", "room_id": "!other:a.test"}]
        return branch.make(sender, "m.room.join_rules", content, "", **kw)
    if kind < 0.85:
        etype = rng.choice(["m.room.topic", "m.room.name", "m.custom.state"])
        key = "" if etype != "m.custom.state" else rng.choice(["", "x", sender, target])
        return branch.make(sender, etype, {"v": rng.randint(0, 100)}, key, **kw)
    return branch.make(sender, "m.room.message", {"body": f"m{rng.randint(0, 999)}"}, **kw)


def allowed(event: Event, branch: Room) -> bool:
    try:
        check_auth_rules(event, branch.state_events())
    except AuthError:
        return False
    return True


def generate_room(
    rv: RoomVersion,
    seed: int,
    steps: int = 40,
    max_branches: int = 3,
    merge_probability: float = 0.1,
) -> GeneratedRoom:
    rng = random.Random(seed)
    creator = USERS[0]
    room = Room.standard(
        rv,
        join_rule=rng.choice(["public", "public", "invite", "knock", "restricted"]),
        users={u: rng.choice(LEVELS) for u in USERS[1:3]},
        ts=1_000_000 + seed * 1000,
    )
    # Let a couple of users in, so there is something to conflict about.
    for user in USERS[1:4]:
        ev = room.member(user, "join")
        if allowed(ev, room):
            room.apply(ev)
        else:
            room.apply(room.member(creator, "invite", user))
            room.join(user)
    gen = GeneratedRoom(room, [fork(room)])
    base_ts = room.ts
    for _ in range(steps):
        r = rng.random()
        if r < 0.15 and len(gen.branches) < max_branches:
            gen.branches.append(fork(rng.choice(gen.branches)))
            continue
        if r < 0.15 + merge_probability and len(gen.branches) > 1:
            a, b = rng.sample(gen.branches, 2)
            states = [dict(a.state), dict(b.state)]
            merged_state = resolve_state(rv, states, room.store, room.room_id)
            gen.merges.append((states, merged_state))
            a.state = merged_state
            a.extremities = (a.extremities + b.extremities)[-10:]
            gen.branches.remove(b)
            continue
        branch = rng.choice(gen.branches)
        # Timestamps collide now and then, to exercise the event ID tie-break.
        ev = candidate(rng, branch, base_ts + rng.randint(0, steps * 2))
        if allowed(ev, branch):
            branch.apply(ev)
    return gen
