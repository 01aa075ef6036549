"""Admin commands that read a database refuse to create an empty one, and say where they looked."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN, _base_env


def run(
    args: list[str], cwd: Path, env: dict[str, str], stdin: str | None = None
) -> tuple[int, str]:
    result = subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.returncode, result.stdout + result.stderr


@pytest.fixture
def elsewhere(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A folder with no data in it, and an environment without ECLOUD_DATA_DIR."""
    env = _base_env(tmp_path)
    del env["ECLOUD_DATA_DIR"]
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder, env


@pytest.mark.parametrize(
    ("command", "database", "setting"),
    [
        (["ecloud-auth", "users", "list"], "auth.db", "ECLOUD_AUTH_DATABASE_URL"),
        (["ecloud-auth", "users", "revoke", "alice"], "auth.db", "ECLOUD_AUTH_DATABASE_URL"),
        (
            ["ecloud-auth", "users", "delete", "alice", "--yes"],
            "auth.db",
            "ECLOUD_AUTH_DATABASE_URL",
        ),
        (["ecloud-registry", "gc"], "registry.db", "ECLOUD_REGISTRY_DATABASE_URL"),
        (["ecloud-registry", "gc", "--dry-run"], "registry.db", "ECLOUD_REGISTRY_DATABASE_URL"),
    ],
)
def test_reading_commands_refuse_a_missing_database(
    elsewhere: tuple[Path, dict[str, str]], command: list[str], database: str, setting: str
) -> None:
    folder, env = elsewhere
    code, out = run(command, folder, env)
    assert code == 1, out
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no database at "), out
    assert str(folder / "data" / database) in out
    assert "ECLOUD_DATA_DIR" in out and setting in out and "Traceback" not in out
    assert list(folder.iterdir()) == []  # nothing was created


def test_a_database_without_tables_is_refused_too(elsewhere: tuple[Path, dict[str, str]]) -> None:
    folder, env = elsewhere
    empty = folder / "empty.db"
    empty.touch()
    code, out = run(
        ["ecloud-auth", "users", "list"],
        folder,
        {**env, "ECLOUD_AUTH_DATABASE_URL": f"sqlite:///{empty}"},
    )
    assert code == 1 and "has no tables yet" in out and "ecloud-auth migrate" in out, out


def test_creating_commands_still_create_and_readers_then_find_it(
    elsewhere: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, env = elsewhere
    data = tmp_path / "srv" / "data"
    env = {**env, "ECLOUD_DATA_DIR": str(data)}
    code, out = run(
        ["ecloud-auth", "users", "create", "alice", "--password-stdin"],
        folder,
        env,
        stdin="a-long-password\n",
    )
    assert code == 0, out
    code, out = run(["ecloud-auth", "users", "list"], folder, env)
    assert code == 0 and "\talice" in out, out
    code, out = run(["ecloud-registry", "migrate"], folder, env)
    assert code == 0, out
    code, out = run(["ecloud-registry", "gc", "--dry-run"], folder, env)
    assert code == 0 and "would delete 0 objects" in out, out
    assert not (folder / "data").exists()


@pytest.mark.postgres
def test_an_unreachable_or_missing_postgresql_database_is_one_clear_line(
    elsewhere: tuple[Path, dict[str, str]],
) -> None:
    folder, env = elsewhere
    url = "postgresql://postgres:hunter2-pw@127.0.0.1:5432/ecloud_no_such_database"
    code, out = run(["ecloud-registry", "gc"], folder, {**env, "ECLOUD_REGISTRY_DATABASE_URL": url})
    assert code == 1 and out.startswith("error: cannot open the database "), out
    assert "hunter2-pw" not in out and "Traceback" not in out
