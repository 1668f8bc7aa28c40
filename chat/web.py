"""The web client's entry page (a single-page app in ``static/app``)."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie


@ensure_csrf_cookie
def app(request: HttpRequest) -> HttpResponse:
    return render(request, "app.html", {"site_name": settings.SITE_NAME,
                                        "open_registration": settings.OPEN_REGISTRATION})
