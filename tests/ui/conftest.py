"""Fixtures of the dashboard tests: a stack, Debian's Chromium driven by Playwright,
images made here and pushed by skopeo.

A browser module is one test function whose steps are subtests: it shares one
stack and one browser, and runs on one xdist worker (each step gets fresh
browser contexts: their own sessionStorage and clipboard). Chromium is
Debian's (``/usr/bin/chromium``), never a Playwright download. Missing
Chromium, Playwright or skopeo skips these tests locally and fails them under
CI=true.

Screenshots of every page, at 1280 px and 375 px wide, are written to
``tests/ui/screenshots/`` (git-ignored) for people to look at.
"""

from __future__ import annotations

import gzip
import hashlib
import inspect
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Stack, build_stack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
WIDTHS = (1280, 375)
CLIENT_TIMEOUT = 300  # generous: skopeo on a loaded 2-core machine
# Generous: the machine running the suite is shared and slow.
UI_TIMEOUT_MS = 30_000
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} is not installed")


def need_browser() -> None:
    if not Path(CHROMIUM).exists():
        _missing("chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("playwright (pip install -e '.[dev]')")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module."""
    need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@dataclass
class Watched:
    """A page plus what it did that a test may want to rule out."""

    page: Any
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@dataclass
class Pages:
    """Fresh browser contexts (their own sessionStorage and clipboard) and pages.

    Every page records dialogs, script errors, CSP or Trusted Types violations
    and requests. `step()` wraps one step of a test: afterwards its contexts
    are closed and, when the step passed, none of its pages may have thrown.
    """

    browser: Any
    contexts: list[Any] = field(default_factory=list)
    watched: list[Watched] = field(default_factory=list)

    def open(self, width: int = 1280, color_scheme: str = "light") -> Watched:
        context = self.browser.new_context(
            viewport={"width": width, "height": 900},
            color_scheme=color_scheme,
            permissions=["clipboard-read", "clipboard-write"],
        )
        context.set_default_timeout(UI_TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()
        w = Watched(page)

        def on_dialog(dialog: Any) -> None:
            w.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        def on_console(message: Any) -> None:
            # A refused request (a wrong password's 401) is logged by the browser
            # itself; script errors and CSP or Trusted Types violations are not that.
            if message.type == "error" and not message.text.startswith("Failed to load resource"):
                w.errors.append(f"console: {message.text}")

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda error: w.errors.append(f"page error: {error}"))
        page.on("console", on_console)
        page.on("request", lambda request: w.requests.append(request.url))
        self.watched.append(w)
        return w

    def close(self) -> list[str]:
        """Close every context; the errors their pages recorded."""
        errors = [e for w in self.watched for e in w.errors]
        for context in self.contexts:
            context.close()
        self.contexts.clear()
        self.watched.clear()
        return errors

    @contextmanager
    def step(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            self.close()
            raise
        errors = self.close()
        assert not errors, errors


@pytest.fixture
def pages(browser: Any) -> Iterator[Pages]:
    made = Pages(browser)
    yield made
    made.close()


def run_steps(subtests: Any, pages: Pages, steps: list[Callable[..., None]], **values: Any) -> None:
    """Run each step as a subtest of one test function, so that a module runs on one
    xdist worker with one stack and one browser (xdist's ``loadgroup`` does not
    group under pytest 9) and a failing step does not stop the others.

    A step takes, by parameter name, any of `values` and ``open_page`` (a new page).
    """
    values = {**values, "open_page": pages.open}
    for step in steps:
        wanted = inspect.signature(step).parameters
        with subtests.test(msg=step.__name__.strip("_").replace("_", " ")), pages.step():
            step(**{name: values[name] for name in wanted})


def login(w: Watched, stack: Stack, username: str) -> None:
    page = w.page
    page.goto(stack.registry_url + "/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(stack.passwords[username])
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Repositories", level=1).wait_for()


# Controls without a label or a name: what a screen reader could not announce.
UNNAMED_CONTROLS = """
() => [...document.querySelectorAll("input, select, textarea, button, a[href]")]
  .filter((el) => {
    if (el.type === "hidden") return false;
    if (el.labels && el.labels.length) return false;
    return !(el.getAttribute("aria-label") || el.textContent.trim());
  })
  .map((el) => el.outerHTML.slice(0, 120))
"""


def screenshots(w: Watched, name: str) -> None:
    """The current page at each width, as tests/ui/screenshots/<name>-<width>.png;
    every control on it must have a name or a label."""
    page = w.page
    assert page.evaluate(UNNAMED_CONTROLS) == [], name
    SCREENSHOTS.mkdir(exist_ok=True)
    size = page.viewport_size
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        # No page may need horizontal scrolling at this width.
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width}px"
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size(size)


def clipboard(w: Watched) -> str:
    return str(w.page.evaluate("navigator.clipboard.readText()"))


# --- images: an OCI layout written here, pushed with skopeo -------------------------------


def _tar_gz(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A gzipped tar layer and the digest of its uncompressed bytes (the diff id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    plain = raw.getvalue()
    return gzip.compress(plain, mtime=0), "sha256:" + hashlib.sha256(plain).hexdigest()


@dataclass
class Layout:
    """An OCI image layout on disk, as skopeo reads it (``oci:<path>:<tag>``)."""

    path: Path

    def __post_init__(self) -> None:
        (self.path / "blobs/sha256").mkdir(parents=True, exist_ok=True)
        (self.path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        if not (self.path / "index.json").exists():
            self._write_index([])

    def _write_index(self, manifests: list[dict[str, Any]]) -> None:
        document = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        (self.path / "index.json").write_text(json.dumps(document))

    def blob(self, data: bytes, media_type: str) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (self.path / "blobs/sha256" / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    def image(self, arch: str, files: dict[str, bytes]) -> dict[str, Any]:
        """A one-layer linux image for `arch`; returns its manifest descriptor."""
        layer, diff_id = _tar_gz(files)
        config = {
            "architecture": arch,
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "config": {},
        }
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": self.blob(
                json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"
            ),
            "layers": [self.blob(layer, "application/vnd.oci.image.layer.v1.tar+gzip")],
        }
        return self.blob(json.dumps(manifest).encode(), OCI_MANIFEST)

    def index(self, entries: list[tuple[dict[str, Any], str]]) -> dict[str, Any]:
        """An index of (manifest descriptor, arch) entries, all linux."""
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {**d, "platform": {"architecture": arch, "os": "linux"}} for d, arch in entries
            ],
        }
        return self.blob(json.dumps(document).encode(), OCI_INDEX)

    def tag(self, name: str, descriptor: dict[str, Any]) -> str:
        """Name `descriptor` in index.json; returns skopeo's reference to it."""
        index = json.loads((self.path / "index.json").read_text())
        index["manifests"].append(
            {**descriptor, "annotations": {"org.opencontainers.image.ref.name": name}}
        )
        self._write_index(index["manifests"])
        return f"oci:{self.path}:{name}"


@dataclass
class Skopeo:
    """skopeo with its own HOME and auth file; every call has a timeout."""

    home: Path
    host: str

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["skopeo", *args],
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(self.home),
                "TMPDIR": str(self.home),
                "REGISTRY_AUTH_FILE": str(self.home / "auth.json"),
            },
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT,
        )

    def push(self, source: str, target: str, creds: str, *extra: str) -> None:
        result = self.run(
            "copy", "--dest-tls-verify=false", "--dest-creds", creds, *extra, source,
            f"docker://{self.host}/{target}",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr

    def inspect(self, target: str, creds: str) -> subprocess.CompletedProcess[str]:
        return self.run(
            "inspect", "--raw", "--tls-verify=false", "--creds", creds,
            f"docker://{self.host}/{target}",
        )  # fmt: skip


@pytest.fixture(scope="module")
def ui_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The module's stack. Sessions last 25 days so a test can move the browser's clock
    20 days ahead (token expiry flags) and still be logged in; failed logins are
    not rate limited here (tests fail them on purpose)."""
    need_browser()
    s = build_stack(
        tmp_path_factory.mktemp("ui-stack"),
        {
            "ECLOUD_SESSION_TTL": str(25 * 86400),
            "ECLOUD_RATE_LIMIT_FAILURES": "10000/60",
            "ECLOUD_RATE_LIMIT_REQUESTS": "10000/60",
        },
    )
    yield s
    s.stop()


@pytest.fixture(scope="module")
def skopeo(ui_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Skopeo:
    if shutil.which("skopeo") is None:
        _missing("skopeo")
    home = tmp_path_factory.mktemp("skopeo")
    (home / "auth.json").write_text('{"auths":{}}')
    return Skopeo(home, ui_stack.registry_host)


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    return Layout(tmp_path_factory.mktemp("oci") / "layout")
