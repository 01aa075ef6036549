"""Service accounts and tokens in Chromium, checked with skopeo; the session's end.

A read-only account on one repository is created in the page, its token read
once from the page and used by skopeo (inspect works, a push is refused),
then revoked in the page (inspect fails). Rotation and deletion likewise.
The tokens page flags tokens expiring within 14 days (the browser's clock is
moved ahead; the stack's sessions last 25 days so the session outlives that).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import Stack
from tests.ui.conftest import (
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


@pytest.fixture(scope="module")
def owner(ui_stack: Stack, skopeo: Skopeo, layout: Layout) -> str:
    """A user with two repositories, app and other, pushed by skopeo."""
    user, password = ui_stack.create_user()
    image = layout.tag("v1", layout.image("amd64", {"a.txt": b"service accounts\n"}))
    for name in ("app", "other"):
        skopeo.push(image, f"{user}/{name}:v1", f"{user}:{password}")
    return user


@pytest.fixture(scope="module")
def image(layout: Layout) -> str:
    return layout.tag("push-me", layout.image("amd64", {"b.txt": b"a push attempt\n"}))


def _create(page: Any, name: str, *, repository: str | None, access: str) -> str:
    """Fill the form, submit it, and return the token the page shows (once)."""
    page.get_by_label("Name", exact=True).fill(name)
    if repository is not None:
        page.get_by_label("One repository").check()
        page.get_by_label("Repository", exact=True).fill(repository)
    page.get_by_label(access).check()
    page.get_by_role("button", name="Create service account").click()
    panel = page.get_by_role("region", name=f"New token for {name}")
    token = str(panel.get_by_label("Token", exact=True).input_value())
    assert token.startswith("ecloud_")
    return token


def _read_only_account_on_one_repository(
    open_page: Any, ui_stack: Stack, owner: str, skopeo: Skopeo, image: str
) -> None:
    w: Watched = open_page()
    page = w.page
    login(w, ui_stack, owner)
    page.get_by_role("link", name="Service accounts").click()
    page.get_by_role("heading", name="New service account").wait_for()
    # Another namespace is refused by the auth service; the form says why.
    page.get_by_label("Name", exact=True).fill("stranger")
    page.get_by_label("One repository").check()
    page.get_by_label("Repository", exact=True).fill("someone-else/app")
    page.get_by_role("button", name="Create service account").click()
    page.get_by_role("alert").filter(has_text="is outside your namespace").wait_for()
    page.get_by_label("All my repositories").check()

    token = _create(page, "puller", repository=f"{owner}/app", access="Read (pull)")
    host = ui_stack.registry_host

    panel = page.get_by_role("region", name="New token for puller")
    panel.get_by_role("button", name="Copy token").click()
    assert clipboard(w) == token
    panel.get_by_role("button", name="Copy kubectl command").click()
    assert clipboard(w) == (
        f"kubectl create secret docker-registry puller-pull --docker-server={host}"
        f" --docker-username={owner} --docker-password={token}"
    )
    scopes = page.get_by_role("list", name="Scopes of puller")
    scopes.get_by_text(f"pull on {owner}/app", exact=True).wait_for()
    card = page.get_by_role("listitem").filter(has=page.get_by_role("heading", name="puller"))
    screenshots(w, "service-accounts")

    creds = f"ci:{token}"
    assert skopeo.inspect(f"{owner}/app:v1", creds).returncode == 0
    # Scoped to app: the other repository and pushing are refused.
    assert skopeo.inspect(f"{owner}/other:v1", creds).returncode != 0
    pushed = skopeo.run(
        "copy", "--dest-tls-verify=false", "--dest-creds", creds, image,
        f"docker://{host}/{owner}/app:from-sa",
    )  # fmt: skip
    assert pushed.returncode != 0

    # Shown once: after a reload the token is nowhere on the page.
    page.reload()
    page.get_by_role("heading", name="New service account").wait_for()
    card.wait_for()
    assert token not in page.content()
    assert page.get_by_role("region", name="New token for puller").count() == 0

    hint = token[-4:]
    card.get_by_role("button", name=f"Revoke token …{hint} of puller").click()
    page.get_by_role("dialog").get_by_role("button", name=f"Revoke token …{hint}").click()
    page.get_by_text(f"Revoked token …{hint} of puller.").wait_for()
    card.get_by_text("No active token.").wait_for()
    assert skopeo.inspect(f"{owner}/app:v1", creds).returncode != 0


def _rotate_and_delete(open_page: Any, ui_stack: Stack, owner: str, skopeo: Skopeo) -> None:
    w: Watched = open_page()
    page = w.page
    login(w, ui_stack, owner)
    page.goto(f"{ui_stack.registry_url}/ui/#/service-accounts")
    first = _create(page, "builder", repository=None, access="Read and write (pull, push)")
    page.get_by_role("button", name="Done, I have copied it").click()
    assert skopeo.inspect(f"{owner}/other:v1", f"ci:{first}").returncode == 0

    page.get_by_role("button", name="Rotate token of builder").click()
    page.get_by_role("dialog").get_by_role("button", name="Rotate token of builder").click()
    second = str(
        page.get_by_role("region", name="New token for builder")
        .get_by_label("Token", exact=True)
        .input_value()
    )
    assert second.startswith("ecloud_") and second != first
    assert skopeo.inspect(f"{owner}/other:v1", f"ci:{first}").returncode != 0
    assert skopeo.inspect(f"{owner}/other:v1", f"ci:{second}").returncode == 0

    page.get_by_role("button", name="Delete service account builder").click()
    dialog = page.get_by_role("dialog", name="Delete service account builder?")
    dialog.get_by_role("button", name="Delete service account builder").click()
    page.get_by_text("Deleted service account builder.").wait_for()
    page.get_by_role("heading", name="builder", exact=True).wait_for(state="detached")
    assert skopeo.inspect(f"{owner}/other:v1", f"ci:{second}").returncode != 0


def _api_token(stack: Stack, session: str, name: str, expires_in: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {session}"}
    r = httpx.post(
        stack.auth_url + "/api/service-accounts",
        json={"name": name, "scopes": ["storage.me.registry=read"]},
        headers=headers,
        timeout=10,
    )
    assert r.status_code == 201, r.text
    r = httpx.post(
        f"{stack.auth_url}/api/service-accounts/{r.json()['id']}/tokens",
        json={"expires_in": expires_in},
        headers=headers,
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def _tokens_page_flags_expiry_within_14_days(open_page: Any, ui_stack: Stack) -> None:
    user, _ = ui_stack.create_user()
    session = ui_stack.session(user)
    month = _api_token(ui_stack, session, "monthly", "30d")
    year = _api_token(ui_stack, session, "yearly", "365d")
    forever = _api_token(ui_stack, session, "forever", "never")
    w: Watched = open_page()
    page = w.page
    login(w, ui_stack, user)
    page.get_by_role("link", name="Tokens").click()
    rows = page.locator("table.listing tbody tr")
    rows.first.wait_for()
    assert rows.count() == 3
    assert page.get_by_text("Expires soon").count() == 0
    screenshots(w, "tokens")

    # 20 days on, the 30-day token expires within 14 days; the others do not.
    page.clock.set_fixed_time(datetime.now(UTC) + timedelta(days=20))
    page.get_by_role("link", name="Repositories").click()
    page.get_by_role("link", name="Tokens").click()
    page.get_by_text("1 token(s) expire within 14 days.").wait_for()
    names = [r.locator("th").inner_text() for r in rows.all()]
    assert names == ["monthly", "yearly", "forever"]  # soonest first, never last
    assert rows.nth(0).get_by_text("Expires soon").is_visible()
    assert rows.nth(1).get_by_text("Expires soon").count() == 0
    assert rows.nth(2).locator("td").nth(1).inner_text() == "never"
    for token, row in zip((month, year), rows.all(), strict=False):
        assert row.locator("time").get_attribute("datetime") == token["expires_at"]
        assert row.get_by_text(f"…{token['hint']}").is_visible()
    assert forever["expires_at"] is None
    screenshots(w, "tokens-expiring")


def _stored_token(page: Any) -> str:
    return str(json.loads(page.evaluate("sessionStorage.getItem('ecloud.session')"))["token"])


def _revoked_session_returns_to_login(open_page: Any, ui_stack: Stack, owner: str) -> None:
    w: Watched = open_page()
    page = w.page
    login(w, ui_stack, owner)
    token = _stored_token(page)
    r = httpx.post(
        ui_stack.auth_url + "/api/logout",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert r.status_code == 204
    page.get_by_role("link", name="Service accounts").click()
    page.get_by_text("Your session has ended. Log in again.").wait_for()
    page.get_by_role("heading", name="Log in").wait_for()
    assert page.evaluate("sessionStorage.length") == 0
    # Logging in again returns to where the person was.
    page.get_by_label("Username").fill(owner)
    page.get_by_label("Password").fill(ui_stack.passwords[owner])
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Service accounts", level=1).wait_for()


def _expired_session_returns_to_login(open_page: Any, ui_stack: Stack, owner: str) -> None:
    later = datetime.now(UTC) + timedelta(days=26)  # sessions last 25 days here
    for action in ("navigate", "reload"):
        w: Watched = open_page()
        page = w.page
        login(w, ui_stack, owner)
        page.clock.set_fixed_time(later)
        if action == "navigate":
            page.get_by_role("link", name="Tokens").click()
        else:
            page.reload()
        page.get_by_text("Your session has expired. Log in again.").wait_for()
        page.get_by_role("heading", name="Log in").wait_for()
        assert page.evaluate("sessionStorage.length") == 0


STEPS = [
    _read_only_account_on_one_repository,
    _rotate_and_delete,
    _tokens_page_flags_expiry_within_14_days,
    _revoked_session_returns_to_login,
    _expired_session_returns_to_login,
]


def test_service_accounts_in_chromium(
    subtests: Any, pages: Pages, ui_stack: Stack, owner: str, skopeo: Skopeo, image: str
) -> None:
    run_steps(subtests, pages, STEPS, ui_stack=ui_stack, owner=owner, skopeo=skopeo, image=image)
