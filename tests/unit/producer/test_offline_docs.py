"""`/docs` and `/redoc` work without internet: every script, style sheet, icon and the
document they load come from the API itself (closed health-plan networks have no CDN)."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import pytest

from tests.unit.producer.conftest import Api

BASE = "http://testserver"
_REFERENCES = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")
_CSS_URLS = re.compile(r"""url\(\s*["']?([^"')]+)["']?\s*\)""")


def referenced(html: str) -> list[str]:
    """Every URL the page loads: scripts, style sheets, icons, the OpenAPI document."""
    return [a or b for a, b in _REFERENCES.findall(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_load_every_asset_from_the_api_itself(api: Api, page: str) -> None:
    response = api.client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    urls = referenced(response.text)
    assert any(url.endswith(".js") for url in urls), urls
    assert any("openapi.json" in url for url in urls), urls
    for url in urls:
        absolute = urljoin(BASE + page, url)
        assert urlsplit(absolute).netloc == "testserver", f"{page} loads {url} from elsewhere"
        asset = api.client.get(absolute)
        assert asset.status_code == 200, url
        assert asset.content, url
        if url.endswith(".css"):
            for inner in _CSS_URLS.findall(asset.text):
                assert inner.startswith("data:") or not urlsplit(inner).netloc, inner
    assert "fonts.googleapis.com" not in response.text


def test_swagger_ui_calls_no_public_validator(api: Api) -> None:
    # Swagger UI's default badge fetches an image from a public validator: turned off.
    assert '"validatorUrl": null' in api.client.get("/docs").text
