"""Pages of the web client: the single-page app (``static/app``) and the sign in / up / out pages.

Sign-in creates a Django session. The single-page app then talks to the REST API with that session
(plus the ``X-CSRFToken`` header on unsafe requests) and to ``/websocket`` with the session cookie, so
one sign-in serves the page, the REST API, file downloads and live events.
"""

from __future__ import annotations

from urllib.parse import quote

from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_http_methods

from accounts import server_settings
from accounts.actions import do_create_user
from accounts.models import User
from chat import rate_limits
from chat.api_errors import ApiError


def _open_registration() -> bool:
    """Whether self sign-up is open now (the setting ``Accounts_RegistrationForm`` is ``Public``)."""
    return server_settings.text("Accounts_RegistrationForm") == "Public"


def _context(**extra: object) -> dict[str, object]:
    return {"site_name": server_settings.text("Site_Name"), "open_registration": _open_registration(), **extra}


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        return "/"
    return target


@ensure_csrf_cookie
def app(request: HttpRequest) -> HttpResponse:
    """The chat client (also at its room URLs). Anonymous visitors are sent to the sign-in page."""
    if not request.user.is_authenticated:
        return redirect(f"/login?next={quote(request.get_full_path())}" if request.path != "/" else "/login")
    return render(request, "app.html", _context())


@ensure_csrf_cookie
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    """Sign in by username or e-mail and password; starts a session."""
    error = ""
    username = ""
    if request.method == "POST":
        username = (request.POST.get("username") or "").strip()
        password = request.POST.get("password") or ""
        ident = username.lstrip("@")
        if "@" in ident:
            found = User.objects.filter(email__iexact=ident).first()
            ident = found.username if found else ident
        address = rate_limits.client_address(request.META)
        wait = rate_limits.login_wait(ident, address) if ident else None
        user = authenticate(request, username=ident, password=password) if ident and password and wait is None \
            else None
        if wait is not None:
            error = f"Too many failed sign-ins. Try again in {max(1, int(wait))} seconds."
        elif user is None:
            error = "Wrong username or password."
            if ident:
                rate_limits.login_failed(ident, address)
        else:
            login(request, user)
            return redirect(_next_url(request))
    status = 429 if error.startswith("Too many") else 400 if error else 200
    return render(request, "login.html", _context(mode="login", error=error, username=username,
                                                  next=_next_url(request)), status=status)


@ensure_csrf_cookie
@require_http_methods(["GET", "POST"])
def signup_view(request: HttpRequest) -> HttpResponse:
    """Open registration (``Accounts_RegistrationForm``, by default ``CONCORD_OPEN_REGISTRATION``):
    create the account and sign in."""
    if not _open_registration():
        return render(request, "login.html", _context(mode="login", error="Registration is disabled on this server.",
                                                      username="", next="/"), status=403)
    error = ""
    form = {k: (request.POST.get(k) or "").strip() for k in ("username", "name", "email")}
    if request.method == "POST":
        try:
            user = do_create_user(form["username"], form["email"], request.POST.get("password") or "",
                                  form["name"])
        except ApiError as exc:
            error = exc.message
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("/")
    return render(request, "login.html", _context(mode="signup", error=error, form=form, next="/"),
                  status=400 if error else 200)


@require_http_methods(["POST"])
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("/login")
