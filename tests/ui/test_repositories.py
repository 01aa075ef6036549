"""The dashboard in Chromium: log in, repositories, one repository, deleting a tag,
markup from manifests shown as text, another user's view, log out.

alice's images are pushed by skopeo from an OCI layout written here; the
attached artifacts (a signature whose annotations hold markup, an SBOM) are
pushed with a manifest PUT, as oras or cosign would.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Stack
from tests.ui.conftest import (
    OCI_MANIFEST,
    SCREENSHOTS,
    Layout,
    Pages,
    Skopeo,
    Watched,
    clipboard,
    login,
    run_steps,
    screenshots,
)

pytestmark = pytest.mark.e2e

MARKUP = "<img src=x onerror=\"fetch('/xss-probe');alert('xss')\">"
SIGNATURE_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
SBOM_TYPE = "application/spdx+json"


@dataclass
class Pushed:
    user: str
    other: str
    digests: dict[str, str]


def _attach(stack: Stack, user: str, name: str, subject: dict[str, Any], **fields: Any) -> str:
    """Push an artifact manifest whose subject is `subject`; returns its digest."""
    token = stack.token(user, f"repository:{name}:pull,push")
    headers = {"Authorization": f"Bearer {token}"}
    base = f"{stack.registry_url}/v2/{name}"
    empty = b"{}"
    digest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    r = httpx.post(f"{base}/blobs/uploads/", params={"digest": digest}, content=empty,
                   headers=headers, timeout=30)  # fmt: skip
    assert r.status_code == 201, r.text
    config = {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest, "size": 2}
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config,
            "layers": [config],
            "subject": subject,
            **fields,
        }
    ).encode()
    r = httpx.put(
        f"{base}/manifests/sha256:{hashlib.sha256(body).hexdigest()}",
        content=body,
        headers={**headers, "Content-Type": OCI_MANIFEST},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return str(r.headers["docker-content-digest"])


@pytest.fixture(scope="module")
def pushed(ui_stack: Stack, skopeo: Skopeo, layout: Layout) -> Pushed:
    user, _ = ui_stack.create_user()
    other, _ = ui_stack.create_user()
    creds = f"{user}:{ui_stack.passwords[user]}"
    amd = layout.image("amd64", {"hello.txt": b"hello from amd64\n" * 400})
    arm = layout.image("arm64", {"hello.txt": b"hello from arm64\n" * 300})
    second = layout.image("amd64", {"v2.txt": b"second version\n" * 200})
    index = layout.index([(amd, "amd64"), (arm, "arm64")])
    skopeo.push(layout.tag("v1", amd), f"{user}/app:v1", creds)
    skopeo.push(layout.tag("v2", second), f"{user}/app:v2", creds)
    skopeo.push(layout.tag("old", second), f"{user}/app:old", creds)
    skopeo.push(layout.tag("multi", index), f"{user}/app:multi", creds, "--all")
    skopeo.push(layout.tag("cli", arm), f"{user}/tools/cli:latest", creds)
    subject = {"mediaType": OCI_MANIFEST, "digest": amd["digest"], "size": amd["size"]}
    signature = _attach(
        ui_stack, user, f"{user}/app", subject,
        artifactType=SIGNATURE_TYPE,
        annotations={"org.opencontainers.image.title": MARKUP, "note": f"<b>{MARKUP}</b>"},
    )  # fmt: skip
    sbom = _attach(ui_stack, user, f"{user}/app", subject, artifactType=SBOM_TYPE)
    return Pushed(
        user,
        other,
        {
            "v1": amd["digest"],
            "v2": second["digest"],
            "multi": index["digest"],
            "signature": signature,
            "sbom": sbom,
        },
    )


def _api(stack: Stack, user: str, path: str) -> Any:
    r = httpx.get(
        stack.registry_url + path,
        headers={"Authorization": f"Bearer {stack.session(user)}"},
        timeout=30,
    )
    r.raise_for_status()
    return r.json()


def _log_in_and_see_repositories(open_page: Any, ui_stack: Stack, pushed: Pushed) -> None:
    w: Watched = open_page()
    page = w.page
    page.goto(ui_stack.registry_url + "/")
    page.get_by_role("heading", name="Log in").wait_for()
    assert page.url == ui_stack.registry_url + "/ui/#/login"
    screenshots(w, "login")

    page.get_by_label("Username").fill(pushed.user)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    alert = page.get_by_role("alert")
    alert.filter(has_text="Wrong username or password.").wait_for()
    assert page.get_by_role("heading", name="Log in").is_visible()
    assert page.evaluate("sessionStorage.length") == 0

    page.get_by_label("Password").fill(ui_stack.passwords[pushed.user])
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Repositories", level=1).wait_for()
    # The token is kept in this tab's sessionStorage only: no cookie, no localStorage.
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    stored = json.loads(page.evaluate("sessionStorage.getItem('ecloud.session')"))
    assert stored["username"] == pushed.user

    listed = {r["name"]: r for r in _api(ui_stack, pushed.user, "/api/repos")["repositories"]}
    rows = page.locator("table.listing tbody tr")
    assert rows.count() == 2
    for name, repo in listed.items():
        row = rows.filter(has=page.get_by_role("link", name=name, exact=True))
        cells = row.locator("td")
        assert cells.nth(0).inner_text() == str(repo["tag_count"])
        # The size the API computed (shared layers once), in bytes on hover.
        assert cells.nth(1).get_attribute("title") == f"{repo['total_size']} bytes"
        assert re.fullmatch(r"[\d.]+ (B|KB|MB)", cells.nth(1).inner_text())
        assert cells.nth(2).locator("time").get_attribute("datetime") == repo["last_pushed"]
    app = listed[f"{pushed.user}/app"]
    tags = _api(ui_stack, pushed.user, f"/api/repos/{pushed.user}/app/tags")["tags"]
    # v1 is also the amd64 image of multi, and v2 and old are one image: counted once.
    assert app["total_size"] < sum(t["size"] for t in tags)
    screenshots(w, "repositories")

    search = page.get_by_label("Filter repositories")
    search.fill("tools")
    assert rows.locator(":visible").count() > 0
    assert page.get_by_role("link", name=f"{pushed.user}/tools/cli").is_visible()
    assert not page.get_by_role("link", name=f"{pushed.user}/app", exact=True).is_visible()
    search.fill("nothing-like-this")
    page.get_by_text("No repository matches “nothing-like-this”.").wait_for()
    search.fill("")
    assert page.get_by_role("link", name=f"{pushed.user}/app", exact=True).is_visible()


def _repository_page(open_page: Any, ui_stack: Stack, pushed: Pushed) -> None:
    w: Watched = open_page()
    page = w.page
    login(w, ui_stack, pushed.user)
    page.get_by_role("link", name=f"{pushed.user}/app", exact=True).click()
    page.get_by_role("heading", name=f"{pushed.user}/app", level=1).wait_for()
    host, name = ui_stack.registry_host, f"{pushed.user}/app"
    tags = {t["name"]: t for t in _api(ui_stack, pushed.user, f"/api/repos/{name}/tags")["tags"]}
    assert set(tags) == {"multi", "old", "v1", "v2"}

    for tag, detail in tags.items():
        card = page.get_by_role("listitem").filter(
            has=page.get_by_role("heading", name=f"Tag {tag}", exact=True)
        )
        code = card.locator(".facts code").first
        assert code.get_attribute("title") == detail["digest"]  # the full digest on hover
        assert code.inner_text() == detail["digest"][:19]  # sha256: + 12 hex digits
        assert (
            card.locator(".facts [title$=' bytes']").get_attribute("title")
            == f"{detail['size']} bytes"
        )
        assert card.locator("time").first.get_attribute("datetime") == detail["pushed_at"]

    multi = page.get_by_role("list", name="Platforms of multi")
    assert multi.get_by_role("listitem").all_inner_texts() == ["linux/amd64", "linux/arm64"]
    attached = page.get_by_role("region", name="Artifacts attached to v1")
    attached.get_by_role("heading", name="Attached artifacts (2)").wait_for()
    assert attached.get_by_text(SIGNATURE_TYPE, exact=True).is_visible()
    assert attached.get_by_text(SBOM_TYPE, exact=True).is_visible()
    assert page.get_by_role("region", name="Artifacts attached to v2").count() == 0

    page.get_by_role("button", name="Copy pull command for v1").click()
    assert clipboard(w) == f"docker pull {host}/{name}:v1"
    page.get_by_role("button", name="Copy pull-by-digest command for multi").click()
    assert clipboard(w) == f"docker pull {host}/{name}@{pushed.digests['multi']}"
    page.get_by_role("button", name="Copy digest of v2").click()
    assert clipboard(w) == pushed.digests["v2"]
    screenshots(w, "repository")

    # Dark mode: the same page, readable (WCAG AA contrast for text and muted text).
    dark: Watched = open_page(color_scheme="dark")
    login(dark, ui_stack, pushed.user)
    dark.page.goto(f"{ui_stack.registry_url}/ui/#/repos/{name}")
    dark.page.get_by_role("heading", name=name, level=1).wait_for()
    for selector in ("h1", ".muted", "dl.facts dt", "button.danger", "a"):
        ratio = dark.page.evaluate(CONTRAST, selector)
        assert ratio >= 4.5, (selector, ratio)
    background = dark.page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(13, 17, 23)"
    dark.page.screenshot(path=str(SCREENSHOTS / "repository-dark-1280.png"), full_page=True)


# Contrast ratio (WCAG 2) of the first element matching the selector against the
# nearest ancestor with an opaque background.
CONTRAST = """
(selector) => {
  const el = document.querySelector(selector);
  const parse = (c) => c.match(/[\\d.]+/g).map(Number);
  let bg = [255, 255, 255];
  for (let n = el; n; n = n.parentElement) {
    const c = parse(getComputedStyle(n).backgroundColor);
    if (c.length === 3 || c[3] > 0) { bg = c; break; }  // the first painted background
  }
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const [a, b] = [lum(parse(getComputedStyle(el).color)), lum(bg)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}
"""


def _markup_from_a_manifest_is_shown_as_text(
    open_page: Any, ui_stack: Stack, pushed: Pushed
) -> None:
    w: Watched = open_page()
    page = w.page
    login(w, ui_stack, pushed.user)
    page.goto(f"{ui_stack.registry_url}/ui/#/repos/{pushed.user}/app")
    attached = page.get_by_role("region", name="Artifacts attached to v1")
    attached.locator(".artifact-title").get_by_text(MARKUP, exact=True).wait_for()
    attached.get_by_text("Annotations (2)").click()
    attached.get_by_text(f"<b>{MARKUP}</b>", exact=True).wait_for()
    # Nothing of it became markup: no image element, no dialog, no request for it.
    assert page.locator("main img, main b").count() == 0
    page.wait_for_load_state("networkidle")
    assert w.dialogs == []
    assert not [u for u in w.requests if "xss-probe" in u or u.endswith("/x")]


def _delete_a_tag(open_page: Any, ui_stack: Stack, pushed: Pushed, skopeo: Skopeo) -> None:
    creds = f"{pushed.user}:{ui_stack.passwords[pushed.user]}"
    assert skopeo.inspect(f"{pushed.user}/app:old", creds).returncode == 0
    w: Watched = open_page()
    page = w.page
    login(w, ui_stack, pushed.user)
    page.goto(f"{ui_stack.registry_url}/ui/#/repos/{pushed.user}/app")
    heading = page.get_by_role("heading", name="Tag old", exact=True)
    heading.wait_for()

    page.get_by_role("button", name="Delete tag old").click()
    dialog = page.get_by_role("dialog", name="Delete tag old?")
    dialog.get_by_role("button", name="Cancel").click()
    dialog.wait_for(state="detached")
    assert heading.is_visible()

    page.get_by_role("button", name="Delete tag old").click()
    dialog = page.get_by_role("dialog", name="Delete tag old?")
    assert f"The tag old of {pushed.user}/app" in dialog.inner_text()
    dialog.get_by_role("button", name="Delete tag old").click()
    page.get_by_text(f"Deleted tag old of {pushed.user}/app.").wait_for()
    heading.wait_for(state="detached")
    assert page.get_by_role("heading", name="Tag v2", exact=True).is_visible()

    assert skopeo.inspect(f"{pushed.user}/app:old", creds).returncode != 0
    # The same image under another tag is untouched.
    assert skopeo.inspect(f"{pushed.user}/app:v2", creds).returncode == 0


def _another_user_sees_nothing_of_the_first(
    open_page: Any, ui_stack: Stack, pushed: Pushed
) -> None:
    w: Watched = open_page()
    page = w.page
    login(w, ui_stack, pushed.other)
    page.get_by_role("heading", name="No repositories yet").wait_for()
    host = ui_stack.registry_host
    assert page.get_by_text(f"docker login {host} -u {pushed.other}", exact=True).is_visible()
    assert page.get_by_text(
        f"docker push {host}/{pushed.other}/my-image:latest", exact=True
    ).is_visible()
    assert pushed.user not in page.locator("main").inner_text()
    screenshots(w, "repositories-empty")

    def missing_page(path: str) -> str:
        page.goto(f"{ui_stack.registry_url}/ui/#/repos/{path}")
        page.get_by_role("heading", name="Repository not found").wait_for()
        page.get_by_text(f"You have no repository named {path}.").wait_for()
        return page.locator("main").inner_text().replace(path, "NAME")

    # alice's repository looks exactly like one that does not exist.
    assert missing_page(f"{pushed.user}/app") == missing_page(f"{pushed.user}/nothing-here")


def _log_out(open_page: Any, ui_stack: Stack, pushed: Pushed) -> None:
    w: Watched = open_page()
    page = w.page
    login(w, ui_stack, pushed.user)
    token = json.loads(page.evaluate("sessionStorage.getItem('ecloud.session')"))["token"]
    page.get_by_role("button", name="Log out").click()
    page.get_by_text("You have logged out.").wait_for()
    assert page.evaluate("sessionStorage.length") == 0
    # The session is revoked at the auth service, not only forgotten here.
    r = httpx.get(
        ui_stack.auth_url + "/api/session", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert r.status_code == 401
    page.goto(f"{ui_stack.registry_url}/ui/#/repos")
    page.get_by_role("heading", name="Log in").wait_for()


STEPS = [
    _log_in_and_see_repositories,
    _repository_page,
    _markup_from_a_manifest_is_shown_as_text,
    _delete_a_tag,
    _another_user_sees_nothing_of_the_first,
    _log_out,
]


def test_repositories_in_chromium(
    subtests: Any, pages: Pages, ui_stack: Stack, pushed: Pushed, skopeo: Skopeo
) -> None:
    run_steps(subtests, pages, STEPS, ui_stack=ui_stack, pushed=pushed, skopeo=skopeo)
