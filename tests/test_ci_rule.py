"""The CI rule: under CI every skip fails, with the reason and how to install what is missing.

The real ``tests/conftest.py`` and ``tests/needs.py`` are copied beside a
small test module in a temporary folder and run by a real pytest, with and
without ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.needs import CI_VALUES, in_ci

HERE = Path(__file__).resolve().parent

SAMPLE = """
import pytest

from tests.needs import missing, need_module, need_tool


def test_tool():
    need_tool("no-such-tool-ecloud", apt="ecloud-imaginary")


def test_module():
    need_module("no_such_module_ecloud", pip="ecloud-imaginary-pkg")


def test_service():
    missing("the imaginary service", "start it")


@pytest.mark.skipif(True, reason="a skipif marker")
def test_marker():
    pass


def test_runs():
    assert True


@pytest.mark.xfail(reason="known", strict=True)
def test_xfail():
    assert False
"""

SAMPLE_COLLECTION = """
from tests.needs import need_module

yaml = need_module("no_such_module_at_import", pip="imaginary")


def test_never():
    pass
"""


def _run(tmp_path: Path, ci: str | None, module: str) -> subprocess.CompletedProcess[str]:
    package = tmp_path / "tests"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text("")
    for name in ("conftest.py", "needs.py"):
        shutil.copy(HERE / name, package / name)
    (package / "test_sample.py").write_text(module)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-rA",
         "tests/test_sample.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_locally_a_missing_dependency_skips(tmp_path: Path) -> None:
    result = _run(tmp_path, None, SAMPLE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 4 skipped, 1 xfailed" in result.stdout
    assert "apt-get install -y ecloud-imaginary" in result.stdout
    assert "PyPI package ecloud-imaginary-pkg" in result.stdout


@pytest.mark.parametrize("value", ["true", "TRUE", "1"])
def test_under_ci_every_skip_fails_and_says_what_is_missing(tmp_path: Path, value: str) -> None:
    result = _run(tmp_path, value, SAMPLE)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    # A skip in setup (a marker, a fixture) fails as an error, one in the test as a failure.
    assert "3 failed, 1 passed, 1 xfailed, 1 error" in out
    assert out.count("under CI a skip is a failure") >= 4
    assert "the command 'no-such-tool-ecloud' is missing" in out
    assert "apt-get install -y ecloud-imaginary (.ci/run does)" in out
    assert "PyPI package ecloud-imaginary-pkg" in out
    assert "the imaginary service is missing; to install it: start it" in out
    assert "a skip is a failure: a skipif marker" in out


def test_under_ci_a_skip_at_import_fails_the_collection(tmp_path: Path) -> None:
    result = _run(tmp_path, "true", SAMPLE_COLLECTION)
    assert result.returncode != 0, result.stdout
    assert "under CI a skip is a failure" in result.stdout
    assert "no_such_module_at_import" in result.stdout
    assert "1 error" in result.stdout
    local = _run(tmp_path, "false", SAMPLE_COLLECTION)
    # Locally the module skips (pytest's 5: nothing ran).
    assert local.returncode == 5 and "1 skipped" in local.stdout, local.stdout


def test_what_counts_as_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ("true", "True", " TRUE ", "1", "yes"):
        monkeypatch.setenv("CI", value)
        assert in_ci(), value
    for value in ("", "false", "0", "no", "truthy"):
        monkeypatch.setenv("CI", value)
        assert not in_ci(), value
    monkeypatch.delenv("CI")
    assert not in_ci()
    assert {"true", "1", "yes"} == CI_VALUES
