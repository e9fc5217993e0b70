"""The status page's HTML, from the Jinja templates in ``app/api/templates/status/``."""

from __future__ import annotations

import jinja2

from ...config import format_duration
from .view import STATUS_WORDS, StatusPage, ago, percent, seconds, utc

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("app.api", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.globals.update(
    words=STATUS_WORDS, utc=utc, ago=ago, percent=percent, seconds=seconds, duration=format_duration,
)


def render_page(page: StatusPage, *, static_url: str, fragment_url: str) -> str:
    """The whole document."""
    return _env.get_template("status/page.html").render(page=page, static_url=static_url, fragment_url=fragment_url)


def render_fragment(page: StatusPage) -> str:
    """The live part the page's script swaps in on each refresh."""
    return _env.get_template("status/fragment.html").render(page=page)
