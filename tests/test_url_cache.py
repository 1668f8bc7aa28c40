"""chat.url_cache: remembered answers are exactly Django's, only for paths that captured nothing,
and the store is bounded."""

from __future__ import annotations

import pytest
from django.urls import Resolver404, path, re_path, resolve

from chat.url_cache import LiteralCachingResolver


def view(request: object, **kwargs: object) -> None:
    return None


def other(request: object, **kwargs: object) -> None:
    return None


def test_answers_match_the_plain_resolver_and_only_literal_ones_are_kept() -> None:
    r = LiteralCachingResolver([path("a/b", view, name="ab"), path("item/<int:n>", other), path("", view)])
    first = r.resolve("a/b")
    assert (first.func, first.url_name, first.route) == (view, "ab", "a/b")
    assert r.resolve("a/b") is first  # remembered
    m = r.resolve("item/7")
    assert (m.func, m.kwargs) == (other, {"n": 7})
    assert r.resolve("item/8").kwargs == {"n": 8}  # captured values are never served from memory
    assert set(r._answers) == {"a/b"}
    with pytest.raises(Resolver404):
        r.resolve("nowhere")
    assert "nowhere" not in r._answers


def test_the_store_is_bounded() -> None:
    r = LiteralCachingResolver([re_path(r"^c/[^/]+$", view)])  # captures nothing, matches many paths
    r.MAX_ENTRIES = 2  # type: ignore[misc]
    for i in range(5):
        assert r.resolve(f"c/{i}").func is view
    assert set(r._answers) == {"c/0", "c/1"}


def test_the_project_routes_resolve_as_before() -> None:
    assert resolve("/api/v1/chat.postMessage").route == "api/v1/chat.postMessage"
    assert resolve("/api/v1/nope.nothing").func.__name__ == "api_not_found"
    assert resolve("/_matrix/federation/v1/send/t1").kwargs == {"txn_id": "t1"}
