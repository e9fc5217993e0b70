"""The status page during an incident, as a real browser renders it after its script ran."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element

import html5lib
import pytest

from tests.gateway import Gateway, running_gateway
from tests.support import wait_until

from .browser import dump_dom, png_colours, screenshot

SVG = "{http://www.w3.org/2000/svg}"
FAST_ALERTS = {
    "ALERT_WINDOW": "15s", "ALERT_FOR": "1s", "ALERT_EVAL_INTERVAL": "1s", "MONITORING_BUCKET": "1s",
    "ALERT_MIN_REQUESTS": "5",
}


def parse(page: str) -> Element:
    tree: Element = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(page)
    return tree


def text(element: Element) -> str:
    return " ".join("".join(element.itertext()).split())


def find(tree: Element, tag: str, **attributes: str) -> list[Element]:
    return [el for el in tree.iter(tag)
            if all(el.get(k.rstrip("_").replace("_", "-")) == v for k, v in attributes.items())]


def wait_for_firing(gw: Gateway, alert: str, timeout: float = 15) -> dict[str, Any]:
    def firing() -> dict[str, Any] | None:
        alerts = gw.client.get("/health/alerts").json()["alerts"]
        return next((a for a in alerts if a["name"] == alert and a["state"] == "firing"), None)

    return wait_until(firing, timeout, lambda: f"{alert} to fire; got {gw.client.get('/health/alerts').text}",
                      0.2)


def incident(gw: Gateway) -> None:
    """Five good translations, then Sarvam's translate fails every call (its breaker opens after
    five failures; the gateway falls back to OpenAI, so callers still get answers)."""
    for _ in range(5):
        assert gw.translate().status_code == 200
    gw.fault("sarvam", operation="translate", error_rate=1.0)
    for _ in range(8):
        assert gw.translate().status_code == 200
    wait_for_firing(gw, "ProviderSuccessRateLow")


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    with running_gateway(FAST_ALERTS) as gw:
        incident(gw)
        yield gw


@pytest.mark.browser
def test_browser_shows_the_firing_alert_the_degraded_provider_and_the_incident_in_the_charts(
    gateway: Gateway, tmp_path: Path,
) -> None:
    dom = parse(dump_dom(f"{gateway.url}/status"))

    # The script ran: it fetched the fragment and swapped it in (the note and title are its own).
    assert text(find(dom, "span", id="refresh-note")[0]).startswith("Updated at ")
    assert text(find(dom, "title")[0]) == "Degraded · Gateway status"

    overall = find(dom, "section", class_="overall status-degraded")
    assert overall and "Degraded" in text(overall[0])
    assert "sarvam.translate: circuit breaker open" in text(overall[0])

    rows = find(dom, "tr", data_alert="ProviderSuccessRateLow", data_service="sarvam.translate", data_state="firing")
    assert {row.get("data-severity") for row in rows} == {"warning", "critical"}
    critical = next(row for row in rows if row.get("data-severity") == "critical")
    assert "Critical" in text(critical)  # in words, not only in colour
    assert "below 80%" in text(critical) and "succeeded" in text(critical)
    assert find(dom, "tr", data_alert="ProviderCircuitOpen", data_service="sarvam.translate", data_state="firing")

    sarvam = find(dom, "article", data_provider="sarvam")[0]
    assert sarvam.get("data-status") == "degraded"
    assert "Degraded" in text(sarvam) and "simulated" in text(sarvam)
    translate = find(sarvam, "tr", data_service="sarvam.translate")[0]
    assert translate.get("data-breaker") == "open" and "open" in text(translate)
    assert "circuit open: 3" in text(translate)  # 8 failing calls: 5 opened the breaker, 3 were refused
    assert find(dom, "article", data_provider="openai")[0].get("data-status") == "healthy"

    success = find(dom, SVG + "svg", id="chart-sarvam-translate-success")[0]
    values = [float(p.get("data-value") or "nan") for p in success.iter() if "point" in (p.get("class") or "")]
    assert values and min(values) < 0.8, values  # the incident: a point past the 80% critical line
    assert find(success, SVG + "rect", class_="point point-critical")
    desc = text(find(success, SVG + "desc")[0])
    assert "below the 80% critical line" in desc and "Latest" in desc
    assert success.get("role") == "img"
    assert {"95% warning", "80% critical"} <= {text(t) for t in success.iter(SVG + "text")}
    latency = find(dom, SVG + "svg", id="chart-sarvam-translate-latency")[0]
    assert {"5 s warning", "10 s critical"} <= {text(t) for t in latency.iter(SVG + "text")}
    assert int(latency.get("data-points") or 0) >= 1

    shot = tmp_path / "status.png"
    screenshot(f"{gateway.url}/status", shot)
    width, height, colours = png_colours(shot.read_bytes())
    assert (width, height) == (1280, 1600)
    assert colours > 200, f"the screenshot looks blank ({colours} colours)"


def test_page_and_fragment_are_valid_html_loading_nothing_from_elsewhere(gateway: Gateway) -> None:
    response = gateway.client.get("/status", params={"window": "15m"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = parse(response.text)  # strict: any parse error raises
    assert "This replica's view (" in response.text and "STATE_REDIS_URL" in response.text

    ids = Counter(el.get("id") for el in page.iter() if el.get("id"))
    assert not [i for i, n in ids.items() if n > 1], "duplicate ids"
    for el in page.iter():
        for ref in (el.get("aria-labelledby") or "").split():
            assert ids[ref] == 1, f"aria-labelledby points at missing id {ref}"
    for el in page.iter():
        for attr in ("src", "href"):
            url = el.get(attr)
            if url and not url.startswith(("http://", "https://")):
                continue
            assert url is None, f"{el.tag} loads {url} from elsewhere"

    assets = [str(el.get("href") or el.get("src")) for el in page.iter() if el.tag in ("link", "script")]
    assert sorted(assets) == ["/status/static/status.css", "/status/static/status.js"]
    for asset in assets:
        assert gateway.client.get(asset).status_code == 200
    links = {el.get("href") for el in page.iter("a")}
    assert {"/health/", "/metrics", "/schema"} <= links
    live = find(page, "main", id="status-live")[0]
    assert live.get("data-refresh-ms") == "1000"  # ALERT_EVAL_INTERVAL
    fragment_url = str(live.get("data-fragment-url"))
    assert urlsplit(fragment_url).query == "window=15m"

    fragment = gateway.client.get(fragment_url)
    assert fragment.status_code == 200
    html5lib.HTMLParser(strict=True).parseFragment(fragment.text)
    assert 'id="status-content"' in fragment.text and "ProviderSuccessRateLow" in fragment.text


def test_an_unusable_chart_window_is_a_problem(gateway: Gateway) -> None:
    response = gateway.client.get("/status", params={"window": "3d"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "window" in response.json()["detail"]
