"""Trusted reverse proxies: X-Forwarded-For/-Proto/-Host believed only from them.

Behind the TLS proxy the README recommends, every request comes from the proxy's address over
plain HTTP: cookies would never get ``Secure``, HSTS would never be sent and every audit row
would name the proxy. Werkzeug's ``ProxyFix`` takes the client's address, the scheme and the
host from the headers the proxy adds, but a client talking to the console directly can send
the same headers; so ProxyFix is applied per request, only when the connection comes from an
address in ``[web] trusted_proxies``. ``x_for=1``: only the last address, the one the proxy
itself appended, counts (a client may send its own X-Forwarded-For to the proxy).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """WSGI middleware: ProxyFix for requests from a trusted proxy, the plain app otherwise."""

    def __init__(self, app: WSGIApplication, trusted: Sequence[str]) -> None:
        self.app = app
        self.networks: list[Network] = [
            ipaddress.ip_network(t.strip(), strict=False) for t in trusted
        ]
        self.fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=1)

    def trusts(self, remote_addr: str | None) -> bool:
        try:
            addr = ipaddress.ip_address((remote_addr or "").split("%", 1)[0])
        except ValueError:  # a unix socket, an empty value: not a proxy of ours
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped  # ::ffff:10.0.0.5 from a dual-stack listener
        return any(addr.version == n.version and addr in n for n in self.networks)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self.trusts(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)


def install_trusted_proxies(app: Flask, trusted: Sequence[str]) -> None:
    """Wrap ``app.wsgi_app`` when there are trusted proxies (nothing changes without)."""
    if trusted:
        app.wsgi_app = TrustedProxies(app.wsgi_app, trusted)  # type: ignore[method-assign]


