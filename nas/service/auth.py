"""Access control: open on loopback, a bearer token everywhere else.

The service binds to 127.0.0.1 by default, where only local users can reach it. Bound to any
other address it requires a token: the REST API takes it as ``Authorization: Bearer <token>``,
the dashboard as a cookie that a ``?token=`` login link sets (so a browser can follow links
and load images). Tokens are compared in constant time (:func:`hmac.compare_digest`). The
cookie is HttpOnly and SameSite=Lax, and the API never accepts it: a page on another site
cannot make a browser call the API with the user's credentials.

The dashboard's forms (finalize) post to page routes, not to the API: each form carries a form
token (an HMAC of its purpose under a key made when the server starts, so only a page this
server rendered has it; :meth:`TokenAuth.check_form`). A post that a browser marks as coming
from another site never gets that far: :mod:`.guard` refuses it, token or not.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re
import secrets
from dataclasses import dataclass, field

from .errors import FormRejectedError, TokenRequiredError

ENV_TOKEN = "GANAS_TOKEN"
COOKIE = "ganas_token"
LOGIN_PARAMETER = "token"
MIN_TOKEN_LENGTH = 16


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP (127.0.0.0/8, ::1); any other name or address is not."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def resolve_token(flag: str | None, environ: dict[str, str] | None = None) -> str | None:
    """The token from ``--token``, else ``$GANAS_TOKEN``; empty means none."""
    environ = os.environ if environ is None else environ
    token = flag if flag is not None else environ.get(ENV_TOKEN)
    return token or None


def check_binding(host: str, token: str | None) -> None:
    """Refuse a non-loopback address without a token, and tokens too short to resist guessing."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise TokenRequiredError(
            f"the access token is {len(token)} characters long; use at least {MIN_TOKEN_LENGTH} "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(24))')")
    if token is None and not is_loopback(host):
        raise TokenRequiredError(
            f"serving on {host}, which is not a loopback address, needs an access token: pass --token TOKEN or set "
            f"${ENV_TOKEN} (e.g. export {ENV_TOKEN}=$(python -c 'import secrets; print(secrets.token_urlsafe(24))')), "
            "or bind to 127.0.0.1")


@dataclass(frozen=True)
class TokenAuth:
    """The service's access rule: ``token=None`` lets every request in."""

    token: str | None = None
    form_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False, compare=False)

    @property
    def enabled(self) -> bool:
        return self.token is not None

    def accepts(self, candidate: str | None) -> bool:
        """Whether ``candidate`` is the token (constant time in the candidate's content)."""
        if self.token is None:
            return True
        if candidate is None:
            return False
        return hmac.compare_digest(candidate.encode("utf-8"), self.token.encode("utf-8"))

    def accepts_header(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries ``Bearer <token>``."""
        if self.token is None:
            return True
        scheme, _, credentials = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and self.accepts(credentials.strip())

    def form_token(self, purpose: str) -> str:
        """What a dashboard form for ``purpose`` (e.g. ``finalize:3``) carries: only this server's pages know it."""
        return hmac.new(self.form_key, purpose.encode("utf-8"), "sha256").hexdigest()

    def check_form(self, purpose: str, submitted: str | None) -> None:
        """Refuse (:class:`FormRejectedError`) a form post without this server's form token for ``purpose``."""
        if not submitted or not hmac.compare_digest(submitted.encode("utf-8"),
                                                    self.form_token(purpose).encode("utf-8")):
            raise FormRejectedError("refused: the form does not carry this server's form token (a page from before "
                                    "the server restarted?); reload the page and send the form again")


class RedactLoginToken(logging.Filter):
    """Masks ``?token=...`` in access-log lines, so a login link never writes the token to a log."""

    PATTERN = re.compile(rf"([?&]{LOGIN_PARAMETER}=)[^&\s\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self.PATTERN.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = self.PATTERN.sub(r"\1***", record.msg)
        return True
