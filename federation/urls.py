"""Matrix federation routes (``/_matrix/...`` and ``/.well-known/matrix/...``)."""

urlpatterns: list = []
