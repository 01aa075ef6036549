"""The dashboard's static files, read once into memory and named by their content.

The whole set is a few tens of KiB, so it is loaded when the app is built and
served from memory. Its version is a hash of every file's name and bytes:
the files are served under ``/ui/assets/<version>/…`` with a year-long
immutable cache, and ``index.html`` (revalidated on every load) points at the
current version, so a release never mixes old and new modules in a browser.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

__all__ = ["ASSETS_PLACEHOLDER", "MEDIA_TYPES", "Asset", "UiAssets", "load_assets"]

# Replaced in index.html by the versioned asset path.
ASSETS_PLACEHOLDER = "__ASSETS__"

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str


@dataclass(frozen=True, slots=True)
class UiAssets:
    version: str
    index_html: bytes
    files: dict[str, Asset]

    @property
    def prefix(self) -> str:
        return f"/ui/assets/{self.version}"


def _walk(folder: Traversable, prefix: str = "") -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            found.update(_walk(entry, f"{prefix}{entry.name}/"))
        else:
            found[prefix + entry.name] = entry.read_bytes()
    return found


def load_assets() -> UiAssets:
    """Every file under ``static/``; raises ValueError on a file type it cannot serve."""
    raw = _walk(files("services.registry.ui") / "static")
    digest = hashlib.sha256()
    assets: dict[str, Asset] = {}
    for name, body in raw.items():
        suffix = name[name.rfind(".") :] if "." in name else ""
        if suffix not in MEDIA_TYPES:
            raise ValueError(f"dashboard file {name} has a type the registry does not serve")
        digest.update(name.encode() + b"\0" + hashlib.sha256(body).digest())
        assets[name] = Asset(body, MEDIA_TYPES[suffix])
    version = digest.hexdigest()[:16]
    template = assets.pop("index.html").body
    index = template.replace(ASSETS_PLACEHOLDER.encode(), f"/ui/assets/{version}".encode())
    return UiAssets(version=version, index_html=index, files=assets)
