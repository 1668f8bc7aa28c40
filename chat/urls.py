"""URL routing: REST API under ``/api/v1/``, incoming webhooks (``/hooks/``), files, avatars, admin,
OpenAPI schema, the web client."""

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path, re_path
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt

from accounts.api.views import InfoView
from accounts.views import avatar
from chat import web
from rooms.api.integrations import HookView
from rooms.views import file_upload


@csrf_exempt  # an unknown path answers the same 404 to every method (no CSRF 403 for a POST)
def api_not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    return JsonResponse({"success": False, "error": f"Unknown API endpoint: {request.path}",
                         "errorType": "error-not-found"}, status=404)


def lazy_view(dotted_path: str, **initkwargs: Any) -> Callable[..., HttpResponse]:
    """The class-based view at ``dotted_path``, imported on its first request.

    For the OpenAPI views: drf-spectacular (with ``django.test``, jinja2 and unittest, which it
    imports) is ~8 MB in every process, and only a request for the schema needs it.
    """
    loaded: list[Callable[..., HttpResponse]] = []

    @csrf_exempt  # as the DRF view it stands for (APIView.as_view() is CSRF-exempt)
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not loaded:
            loaded.append(import_string(dotted_path).as_view(**initkwargs))
        return loaded[0](request, *args, **kwargs)

    return view


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/info", InfoView.as_view()),
    path("api/v1/", include("accounts.api.urls")),
    path("api/v1/", include("rooms.api.urls")),
    path("api/schema", lazy_view("drf_spectacular.views.SpectacularAPIView"), name="schema"),
    path("api/docs", lazy_view("drf_spectacular.views.SpectacularSwaggerView", url_name="schema")),
    re_path(r"^api/(?P<rest>.*)$", api_not_found),
    path("health", health),
    path("hooks/<str:integration_id>/<str:token>", HookView.as_view()),  # Rocket.Chat's incoming webhooks
    path("hooks/<str:integration_id>/<str:user_id>/<str:token>", HookView.as_view()),
    path("", include("federation.urls")),
    path("avatar/<str:username>", avatar),
    path("file-upload/<str:upload_id>/thumb/<path:name>", file_upload, {"thumb": True}),
    path("file-upload/<str:upload_id>/<path:name>", file_upload),
    path("login", web.login_view, name="login"),
    path("signup", web.signup_view, name="signup"),
    path("logout", web.logout_view, name="logout"),
    re_path(r"^(?:channel|group|direct)/[^/]+/?$", web.app),  # client routes (permalinks)
    path("", web.app, name="app"),
]

handler400 = "chat.error_views.bad_request"
handler403 = "chat.error_views.permission_denied"
handler404 = "chat.error_views.page_not_found"
handler500 = "chat.error_views.server_error"
