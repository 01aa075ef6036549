"""The repository stands alone: nothing in it points at files outside it, and the README
leads to the documents that explain the system."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import ROOT

OUTSIDE = re.compile(r"\.\./shared|/work/shared|/work/wt/|/work/main")


def tracked_files() -> list[str]:
    result = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    return [f for f in result.stdout.splitlines() if f != "tests/test_self_contained.py"]


def test_no_file_refers_outside_the_repository() -> None:
    offenders = []
    for name in tracked_files():
        path = ROOT / name
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        offenders += [f"{name}: {m.group(0)}" for m in OUTSIDE.finditer(text)]
    assert offenders == []


def test_the_readme_links_the_documents_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    for doc in ("docs/architecture.md", "docs/api.md"):
        assert f"]({doc})" in readme
        assert (ROOT / doc).is_file()
    architecture = (ROOT / "docs" / "architecture.md").read_text()
    for heading in ("## Tokens", "## Data model", "## Storage layout", "## Garbage collection"):
        assert heading in architecture
    assert "one node" in architecture.lower() and "many nodes" in architecture.lower()
