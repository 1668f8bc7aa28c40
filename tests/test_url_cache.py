"""chat.url_cache: remembered answers are exactly Django's, only for paths that captured nothing,
per resolver, and the store is bounded."""

from __future__ import annotations

import pytest
from django.urls import Resolver404, URLResolver, get_resolver, include, path, re_path, resolve
from django.urls.resolvers import RegexPattern

from chat.url_cache import ResolutionMemo


def view(request: object, **kwargs: object) -> None:
    return None


def other(request: object, **kwargs: object) -> None:
    return None


def _root(patterns: list[object]) -> URLResolver:
    return URLResolver(RegexPattern(r"^/"), patterns)


def test_answers_match_the_plain_resolver_and_only_literal_ones_are_kept() -> None:
    root = _root([path("a/b", view, name="ab"), path("item/<int:n>", other), re_path(r"^c/[^/]+$", view),
                  path("", view)])
    memo = ResolutionMemo()
    first = memo.resolve(root, "/a/b")
    plain = root.resolve("/a/b")
    assert (first.func, first.url_name, first.route, first.tried) == (plain.func, "ab", "a/b", plain.tried)
    assert memo.resolve(root, "/a/b") is first  # remembered
    m = memo.resolve(root, "/item/7")
    assert (m.func, m.kwargs) == (other, {"n": 7})
    assert memo.resolve(root, "/item/8").kwargs == {"n": 8}  # captured values are never served from memory
    for i in range(5):  # a regular expression that captures nothing: any number of paths, none kept
        assert memo.resolve(root, f"/c/{i}").func is view
    assert memo.resolve(root, "/").func is view
    assert set(memo._answers) == {"/a/b", "/"}
    with pytest.raises(Resolver404):
        memo.resolve(root, "/nowhere")
    assert "/nowhere" not in memo._answers


def test_a_new_resolver_starts_afresh() -> None:
    memo = ResolutionMemo()
    one = _root([path("x", view)])
    two = _root([path("x", other)])
    assert memo.resolve(one, "/x").func is view
    assert memo.resolve(two, "/x").func is other
    assert memo.resolve(one, "/x").func is view


def test_included_routes_resolve_as_without_the_memo() -> None:
    root = _root([path("api/", include([path("one", view), path("two/<str:k>", other)]))])
    memo = ResolutionMemo()
    for p in ("/api/one", "/api/one", "/api/two/z"):
        got, want = memo.resolve(root, p), root.resolve(p)
        assert (got.func, got.kwargs, got.route, got.tried) == (want.func, want.kwargs, want.route, want.tried)


def test_the_project_routes_resolve_as_before() -> None:
    memo = ResolutionMemo()
    assert memo.resolve(get_resolver(), "/api/v1/chat.postMessage").route == "api/v1/chat.postMessage"
    assert resolve("/api/v1/chat.postMessage").route == "api/v1/chat.postMessage"
    assert memo.resolve(get_resolver(), "/api/v1/nope.nothing").func.__name__ == "api_not_found"
    assert resolve("/_matrix/federation/v1/send/t1").kwargs == {"txn_id": "t1"}
