"""URL resolution without the per-request walk over every route."""

from __future__ import annotations

from django.urls import URLResolver
from django.urls.resolvers import ResolverMatch


class ResolutionMemo:
    """Remembers a resolver's answers for paths that match a literal route.

    Resolving walks the patterns in order and, for every ``include`` that does not match, builds
    the list of patterns it tried; the root resolver then copies that list once more into its
    answer: about 0.1 ms for ``/api/v1/chat.postMessage`` with ~320 routes, on every request. A path
    that matched a route without converters or regular expressions (``path("api/v1/chat.postMessage")``:
    its route is the path itself) resolves to the same match every time, so the answer is kept.
    Only such paths are kept, so the memo holds at most one answer per literal route, whatever
    paths clients send (``/channel/<anything>`` is a regular expression: never kept). Everything
    else goes through the normal walk each time, so results are exactly those of Django's resolver.
    Answers are for one resolver object: a new URLconf (``clear_url_caches``, a test's
    ``ROOT_URLCONF``) starts afresh.
    """

    def __init__(self) -> None:
        self._resolver: URLResolver | None = None
        self._answers: dict[str, ResolverMatch] = {}

    def resolve(self, resolver: URLResolver, path: str) -> ResolverMatch:
        if resolver is not self._resolver:
            self._resolver, self._answers = resolver, {}
        answer = self._answers.get(path)
        if answer is not None:
            return answer
        match = resolver.resolve(path)
        if match.route == path.removeprefix("/") and not match.args and not match.kwargs \
                and not match.captured_kwargs and not match.extra_kwargs:
            self._answers[path] = match
        return match
