"""docs/api.md names every endpoint both services route (method and path), so the
document cannot silently fall behind the code.

Paths are written as in the document: registry parameters as ``<name>``
(``{upload_id}`` as ``<id>``), auth service parameters as ``{id}``.
"""

from __future__ import annotations

import re
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Route

from tests.conftest import ROOT

DOC = (ROOT / "docs" / "api.md").read_text()
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def endpoints(app: Starlette, style: str) -> set[tuple[str, str]]:
    found = set()
    for route in app.routes:
        if not isinstance(route, Route) or route.methods is None:
            continue
        if style == "registry":
            path = _PARAM.sub(lambda m: "<id>" if m[1] == "upload_id" else f"<{m[1]}>", route.path)
        else:
            path = _PARAM.sub("{id}", route.path)
        for method in route.methods:
            if method not in ("HEAD", "OPTIONS") or route.methods <= {"HEAD", "OPTIONS"}:
                found.add((method, path))
    return found


def test_every_endpoint_of_both_services_is_documented(tmp_path: Path) -> None:
    from services.auth.app import create_app as auth_app
    from services.auth.settings import AuthSettings
    from services.registry.app import create_app as registry_app
    from services.registry.settings import RegistrySettings

    env = {"ECLOUD_DATA_DIR": str(tmp_path)}
    documented = {
        "auth": endpoints(auth_app(AuthSettings.from_env(env)), "auth"),
        "registry": endpoints(registry_app(RegistrySettings.from_env(env)), "registry"),
    }
    assert len(documented["auth"]) >= 20 and len(documented["registry"]) >= 20
    missing = [
        f"{service}: {method} {path}"
        for service, found in documented.items()
        for method, path in sorted(found)
        if f"{method} {path}" not in DOC
    ]
    assert missing == [], "document these in docs/api.md"
