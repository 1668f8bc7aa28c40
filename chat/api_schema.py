"""OpenAPI for the Rocket.Chat-compatible API (drf-spectacular).

Our views are plain ``APIView`` s answering Rocket.Chat-shaped JSON, so the schema describes each
call's request and answer as JSON objects (with the view's docstring as its description) and
declares the ``X-Auth-Token`` + ``X-User-Id`` header pair as the security scheme.

Imported only when a schema is generated (it is DRF's ``DEFAULT_SCHEMA_CLASS``, which DRF loads on
a view's first ``.schema`` access, before drf-spectacular looks up any extension), so a process
that never serves the schema never loads drf-spectacular.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes


class RocketChatAutoSchema(AutoSchema):
    def get_request_serializer(self) -> Any:
        found = super().get_request_serializer() if hasattr(self.view, "get_serializer") else None
        return found if found is not None else (OpenApiTypes.OBJECT if self.method != "GET" else None)

    def get_response_serializers(self) -> Any:
        found = super().get_response_serializers() if hasattr(self.view, "get_serializer") else None
        return found if found is not None else OpenApiTypes.OBJECT


class TokenAuthScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.RocketChatTokenAuthentication"
    name = ["AuthToken", "UserId"]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, str]]:
        return [{"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
                {"type": "apiKey", "in": "header", "name": "X-User-Id"}]


class SessionAuthScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.CsrfExemptSessionAuthentication"
    name = "Session"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
