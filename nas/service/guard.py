"""What neither another web site nor a foreign host name can make the service do.

One middleware (see :func:`nas.service.app.create_app`) checks every request, before the token and any
route, with three rules:

- **Host allow-list.** The ``Host`` header must name this server as it was bound (``ganas serve --host H
  --port P``: ``H:P``, plus ``localhost``, ``127.0.0.1`` and ``[::1]`` on loopback) or as ``--allowed-host``
  lists it, else **421**. DNS rebinding gives a page of ``evil.example`` the loopback server's address under
  its own name, so its requests say ``Host: evil.example`` and are refused.
- **Same origin.** A state-changing request (any method but GET, HEAD, OPTIONS) that a browser marks as
  coming from another site is refused (**403**): an ``Origin`` (else a ``Referer``) that is not the ``Host``
  nor an allowed host, ``Origin: null``, or ``Sec-Fetch-Site`` other than ``same-origin``/``none``. Pages
  cannot forge these headers; a client that sends none of them (curl, scripts) is not a browser.
- **JSON only.** A state-changing ``/api`` request must say ``Content-Type: application/json``, even with an
  empty body (**403** otherwise). An HTML form can send only urlencoded, multipart or plain text, and a
  script on another site cannot send JSON without a CORS preflight, which this server never grants.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable, Mapping
from urllib.parse import urlsplit

from .auth import is_loopback
from .errors import AllowedHostsError, CrossSiteRequestError, HostNotAllowedError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # change nothing: links from other pages keep working
SAME_SITE_FETCHES = frozenset({"same-origin", "none"})  # Sec-Fetch-Site values of this server's own pages
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
ANY_HOST = "*"
JSON = "application/json"
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class HostName:
    """A host name or IP address with a port; ``port=None`` in an allow-list entry matches any port."""

    name: str  # lower case; an IPv6 address without its brackets
    port: int | None = None

    @classmethod
    def parse(cls, text: str, default_port: int | None = None) -> "HostName":
        """``name``, ``name:port``, ``1.2.3.4:port``, ``[::1]:port`` or a bare IPv6 address; ValueError if malformed."""
        text = text.strip().lower()
        if text.startswith("["):
            name, bracket, rest = text[1:].partition("]")
            if not bracket or (rest and not rest.startswith(":")):
                raise ValueError(text)
            port_text = rest[1:] if rest else None
        elif text.count(":") == 1:
            name, port_text = text.split(":")
        else:  # a name, or an IPv6 address without brackets (no port then)
            name, port_text = text, None
        if not name or any(c in name for c in "/@?#\\ ") or (":" in name and not _is_ip(name)):
            raise ValueError(text)
        if port_text is None:
            return cls(name, default_port)
        if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
            raise ValueError(text)
        return cls(name, int(port_text))

    def matches(self, other: "HostName") -> bool:
        return self.name == other.name and (self.port is None or self.port == other.port)

    def __str__(self) -> str:
        name = f"[{self.name}]" if ":" in self.name else self.name
        return name if self.port is None else f"{name}:{self.port}"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class AllowedHosts:
    """The names a request's ``Host`` may give; ``any_host`` accepts every one (``--allowed-host '*'``)."""

    names: tuple[HostName, ...]
    any_host: bool = False

    @classmethod
    def loopback(cls, port: int | None = None) -> "AllowedHosts":
        """``localhost``, ``127.0.0.1`` and ``[::1]`` on ``port`` (None: any port)."""
        return cls(tuple(HostName(name, port) for name in LOOPBACK_NAMES))

    def lists(self, host: HostName) -> bool:
        """Whether an entry names ``host`` (``*`` aside)."""
        return any(entry.matches(host) for entry in self.names)

    def allows(self, host: HostName) -> bool:
        return self.any_host or self.lists(host)

    def describe(self) -> str:
        return "any host" if self.any_host else ", ".join(str(n) for n in self.names)


def allowed_hosts(host: str, port: int, extra: Iterable[str] = (), token: str | None = None) -> AllowedHosts:
    """The hosts of a server bound to ``host:port`` and reached under the ``extra`` names (``--allowed-host``).

    Bound to every interface (0.0.0.0, ::) the server cannot know its names: ``extra`` must list them (``*``
    accepts any, and only behind a token, since any name then reaches it). ``port`` 0 (chosen by the system)
    allows any port.
    """
    extra = list(extra)
    listed = tuple(_allowed_entry(text) for text in extra if text.strip() != ANY_HOST)
    any_host = any(text.strip() == ANY_HOST for text in extra)
    if any_host and token is None:
        raise AllowedHostsError(f"--allowed-host '{ANY_HOST}' accepts any Host header, so any web page under a name "
                                "that resolves to this server (DNS rebinding) could use it: it needs an access token "
                                "(--token or $GANAS_TOKEN); or list the names clients use with --allowed-host NAME")
    bound, port_or_any = host.strip().strip("[]").lower(), port or None
    if _is_unspecified(bound):
        if not listed and not any_host:
            raise AllowedHostsError(
                f"serving on {host} (every interface): name the hosts clients reach this server by with --allowed-host "
                "NAME (repeatable, NAME or NAME:PORT, e.g. --allowed-host $(hostname) --allowed-host 192.168.1.5), "
                f"or pass --allowed-host '{ANY_HOST}' to accept any (no protection against DNS rebinding)")
        return AllowedHosts(AllowedHosts.loopback(port_or_any).names + listed, any_host)
    own = (HostName(bound, port_or_any),)
    if is_loopback(bound):
        own += tuple(n for n in AllowedHosts.loopback(port_or_any).names if n.name != bound)
    return AllowedHosts(own + listed, any_host)


def _allowed_entry(text: str) -> HostName:
    try:
        return HostName.parse(text)
    except ValueError:
        raise AllowedHostsError(f"--allowed-host {text!r} is not a host: give a name or address with an optional port, "
                                "as a browser's address bar shows it (ganas.example.org, gpu-node-3:8765, "
                                "[::1]:8765), without http:// or a path") from None


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def check_request(hosts: AllowedHosts, method: str, headers: Mapping[str, str], api: bool) -> None:
    """Raise the service error a request breaks the rules with (see the module's docstring); None if it keeps them."""
    host = _request_host(hosts, headers.get("host"))
    if method.upper() in SAFE_METHODS:
        return
    _check_same_origin(hosts, host, headers)
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if api and media_type != JSON:
        got = f"Content-Type: {media_type}" if media_type else "no Content-Type"
        raise CrossSiteRequestError(
            f"refused: a {method.upper()} to the API must send Content-Type: {JSON} (got {got}); send the body as "
            "JSON, or an empty body with that header, e.g. curl -X POST -H 'Content-Type: application/json' URL. "
            "Other sites' HTML forms cannot send JSON, so they cannot change anything here")


def _request_host(hosts: AllowedHosts, header: str | None) -> str:
    """The ``Host`` header, if the allow-list has it."""
    if not header:
        raise HostNotAllowedError("refused: the request has no Host header")
    try:
        host = HostName.parse(header, default_port=DEFAULT_PORTS["http"])
    except ValueError:
        raise HostNotAllowedError(f"refused: the Host header {header!r} is not a host name") from None
    if not hosts.allows(host):
        # the names it answers stay out of the answer (a rebound page can read it); ganas serve prints them
        raise HostNotAllowedError(
            f"refused: this server does not answer to the name {header} (ganas serve prints the names it answers to "
            "when it starts); if that is its name behind a proxy or on a cluster, start it with --allowed-host NAME")
    return header


def _check_same_origin(hosts: AllowedHosts, host: str, headers: Mapping[str, str]) -> None:
    site = headers.get("sec-fetch-site")
    if site is not None and site.lower() not in SAME_SITE_FETCHES:
        raise CrossSiteRequestError(f"refused: the request was posted from another site (Sec-Fetch-Site: {site}); "
                                    "only this server's own pages may change anything")
    origin, header = headers.get("origin"), "Origin"
    if origin is None:
        origin, header = headers.get("referer"), "Referer"
    if origin is None or _is_own(hosts, host, origin):
        return
    raise CrossSiteRequestError(
        f"refused: the request was posted from {origin} ({header}), not from this server's pages ({host}); if the "
        "server is reached under that name (a reverse proxy), start it with --allowed-host NAME")


def _is_own(hosts: AllowedHosts, host: str, url: str) -> bool:
    """Whether ``url``'s origin is this server: the request's own ``Host``, or a host the allow-list names."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.netloc:
        return False  # "null" (a sandboxed or file: page), another scheme
    if parts.netloc.lower() == host.lower():
        return True
    try:
        return hosts.lists(HostName.parse(parts.netloc, default_port=DEFAULT_PORTS[parts.scheme]))
    except ValueError:
        return False
