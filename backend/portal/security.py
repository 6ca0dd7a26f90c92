"""The headers every portal response carries.

Pages load scripts and styles from the application itself only (the vendor packages included),
so the Content-Security-Policy allows 'self' and nothing inline; no other site may frame a page
(clickjacking); browsers must not guess content types; other sites learn at most our origin
from a link followed; and a signed-in page is never stored by a browser or proxy cache.
"""
from __future__ import annotations

from flask import Blueprint, Response, request

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
# Pages may show what only the signed-in user may see; the blueprint's static files may be cached.
PAGE_CACHE_CONTROL = "no-store"


def protect(blueprint: Blueprint) -> None:
    """Adds SECURITY_HEADERS to every response of `blueprint`'s views, error pages included,
    and keeps its pages out of caches."""
    static_endpoint = f"{blueprint.name}.static"

    @blueprint.after_request
    def add_security_headers(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        if request.endpoint != static_endpoint:
            response.headers["Cache-Control"] = PAGE_CACHE_CONTROL
        return response
