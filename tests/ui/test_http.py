"""The dashboard over plain HTTP: where it is served, its security and cache headers,
what its files may contain, its configuration, the auth service's CORS for it, and
that the files ship inside the Python package."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import httpx

from tests.conftest import ROOT, Stack

STATIC = ROOT / "services/registry/ui/static"
ASSET_URL = re.compile(r"^/ui/assets/[0-9a-f]{16}/")


def _get(stack: Stack, path: str, **headers: str) -> httpx.Response:
    return httpx.get(stack.registry_url + path, headers=headers, timeout=30)


def _csp(response: httpx.Response) -> dict[str, list[str]]:
    policy = response.headers["content-security-policy"]
    directives = [d.strip().split() for d in policy.split(";") if d.strip()]
    return {d[0]: d[1:] for d in directives}


def _assert_secure(response: httpx.Response, stack: Stack) -> None:
    csp = _csp(response)
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["img-src"] == ["'self'"]
    # Only the two services: this origin and the auth service's public URL.
    assert csp["connect-src"] == ["'self'", stack.auth_url]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["require-trusted-types-for"] == ["'script'"]
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in found:
            if name == "style" or name.startswith("on"):
                self.inline.append(f"<{tag} {name}>")
        if tag == "style":
            self.inline.append("<style>")
        if tag == "script":
            self._in_script = True
            if not found.get("src"):
                self.inline.append("<script> without src")
        for name in ("src", "href"):
            value = found.get(name)
            if value and not value.startswith("#"):
                self.urls.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("inline script code")


def test_root_redirects_to_the_dashboard(stack: Stack) -> None:
    for path in ("/", "/ui"):
        r = _get(stack, path)
        assert r.status_code == 302
        assert r.headers["location"] == "/ui/"
    r = httpx.get(stack.registry_url + "/", follow_redirects=True, timeout=30)
    assert r.status_code == 200
    assert r.url.path == "/ui/"


def test_page_headers_and_no_inline_code(stack: Stack) -> None:
    r = _get(stack, "/ui/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "no-cache"
    _assert_secure(r, stack)
    page = _Page()
    page.feed(r.text)
    assert page.inline == []
    assert page.urls and all(ASSET_URL.match(u) for u in page.urls), page.urls
    # Revalidation: the same page answers 304 to its ETag.
    again = _get(stack, "/ui/", **{"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    _assert_secure(again, stack)

    for url in page.urls:
        asset = _get(stack, url)
        assert asset.status_code == 200, url
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        _assert_secure(asset, stack)


def _page_urls(stack: Stack) -> list[str]:
    page = _Page()
    page.feed(_get(stack, "/ui/").text)
    return page.urls


def _assets(stack: Stack) -> dict[str, httpx.Response]:
    prefix = ASSET_URL.match(_page_urls(stack)[0])
    assert prefix is not None
    found = {}
    for path in sorted(STATIC.rglob("*")):
        if path.is_file() and path.name != "index.html":
            name = path.relative_to(STATIC).as_posix()
            found[name] = _get(stack, prefix.group(0) + name)
    return found


TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# What the page's scripts never do: build HTML from strings, evaluate code,
# keep anything in cookies or localStorage.
FORBIDDEN = re.compile(
    r"\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function"
    r"|\blocalStorage\b|document\.cookie"
)


def test_every_file_is_served_with_its_type_and_the_scripts_stay_safe(stack: Stack) -> None:
    assets = _assets(stack)
    assert {"app.css", "favicon.svg", "js/app.js", "js/views/repo.js"} <= set(assets)
    for name, r in assets.items():
        assert r.status_code == 200, name
        assert r.headers["content-type"] == TYPES[Path(name).suffix], name
        assert r.content == (STATIC / name).read_bytes()
        if name.endswith(".js"):
            code = "\n".join(
                line for line in r.text.splitlines() if not line.strip().startswith("//")
            )
            assert not FORBIDDEN.findall(code), (name, FORBIDDEN.findall(code))
            # Only relative imports of our own modules, no other host.
            for target in re.findall(r'^import .* from "([^"]+)";$', r.text, re.M):
                assert target.startswith("./") or target.startswith("../"), (name, target)


def test_unknown_files_and_versions_are_404(stack: Stack) -> None:
    prefix = ASSET_URL.match(_page_urls(stack)[0])
    assert prefix is not None
    for path in (
        "/ui/assets/0000000000000000/app.css",  # another version: never cached as this one
        prefix.group(0) + "missing.js",
        prefix.group(0) + "%2e%2e/%2e%2e/settings.py",
        prefix.group(0) + "../__init__.py",
        "/ui/nothing-here",
    ):
        r = _get(stack, path)
        assert r.status_code == 404, path
        assert r.headers["x-content-type-options"] == "nosniff"


def test_config_names_both_services(stack: Stack) -> None:
    r = _get(stack, "/ui/config.json")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-cache"
    config = r.json()
    assert config["auth_url"] == stack.auth_url
    assert config["registry_url"] == stack.registry_url
    assert config["registry_host"] == stack.registry_host
    assert config["service"] == "registry"
    assert re.fullmatch(r"[0-9a-f]{16}", config["version"])


def test_auth_service_allows_the_registry_origin_by_default(stack: Stack) -> None:
    """The dashboard calls the auth service from the registry's origin."""
    origin = stack.registry_url
    preflight = httpx.options(
        stack.auth_url + "/api/login",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=10,
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == origin
    user, password = stack.create_user()
    r = httpx.post(
        stack.auth_url + "/api/login",
        json={"username": user, "password": password},
        headers={"Origin": origin},
        timeout=10,
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == origin
    assert "access-control-allow-credentials" not in r.headers
    for other in ("http://127.0.0.1:1", "https://evil.example.com", origin + ".evil.com"):
        r = httpx.options(
            stack.auth_url + "/api/service-accounts",
            headers={"Origin": other, "Access-Control-Request-Method": "GET"},
            timeout=10,
        )
        assert "access-control-allow-origin" not in r.headers, other


def test_dashboard_files_ship_in_the_package(tmp_path: Path) -> None:
    """setuptools' build copies every file under static/ (package data)."""
    for part in ("pyproject.toml", "shared", "services", "cli"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / part)
    result = subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py",
         "--build-lib", str(tmp_path / "out")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    built = tmp_path / "out/services/registry/ui/static"
    expected = {p.relative_to(STATIC) for p in STATIC.rglob("*") if p.is_file()}
    shipped = {p.relative_to(built) for p in built.rglob("*") if p.is_file()}
    assert len(expected) >= 10
    assert expected <= shipped
