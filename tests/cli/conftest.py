"""Fixtures of the ``ec`` tests: a stack of our own and a runner for the real entry point."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BIN, ROOT, Stack, build_stack


@pytest.fixture(scope="module")
def cli_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Our own stack: these tests fail logins on purpose (the shared one rate-limits them)."""
    s = build_stack(
        tmp_path_factory.mktemp("cli-stack"),
        {"ECLOUD_RATE_LIMIT_FAILURES": "10000/60", "ECLOUD_RATE_LIMIT_REQUESTS": "10000/60"},
    )
    yield s
    s.stop()


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Ec:
    """Runs ``ec`` as a user would: its console script, a HOME of its own, no terminal."""

    home: Path
    env: dict[str, str]

    @property
    def config_file(self) -> Path:
        xdg = self.env.get("XDG_CONFIG_HOME")
        return (Path(xdg) if xdg else self.home / ".config") / "ec" / "config.json"

    def run(self, *args: str, stdin: str | None = None, **env: str) -> Result:
        proc = subprocess.run(
            [str(BIN / "ec"), *args],
            env={**self.env, **env},
            input=stdin or "",
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.home,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str, stdin: str | None = None, **env: str) -> Result:
        result = self.run(*args, stdin=stdin, **env)
        assert result.code == 0, f"ec {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
        assert "Traceback" not in result.stderr
        return result

    def fails(self, *args: str, stdin: str | None = None, **env: str) -> str:
        """Run a command that must fail with one clear line; return that line."""
        result = self.run(*args, stdin=stdin, **env)
        assert result.code != 0, f"ec {' '.join(args)} should have failed:\n{result.stdout}"
        assert "Traceback" not in result.stderr + result.stdout
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: ")
        return lines[0]

    def login(self, stack: Stack, username: str) -> Result:
        return self.ok(
            "auth",
            "login",
            "--username",
            username,
            "--password-stdin",
            stdin=stack.passwords[username] + "\n",
        )


def make_ec(home: Path, stack: Stack | None) -> Ec:
    home.mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("EC_", "ECLOUD_")) and k != "XDG_CONFIG_HOME"
    }
    env.update({"HOME": str(home), "PYTHONPATH": str(ROOT), "COLUMNS": "200", "NO_COLOR": "1"})
    if stack is not None:
        env["EC_AUTH_URL"] = stack.auth_url
        env["EC_REGISTRY_URL"] = stack.registry_url
    return Ec(home, env)


@pytest.fixture
def ec(tmp_path: Path, cli_stack: Stack) -> Ec:
    return make_ec(tmp_path / "home", cli_stack)


def run_on_terminal(
    ec: Ec, *args: str, answer: str | None = None, timeout: float = 120, **env: str
) -> Result:
    """Run ``ec`` with stdin, stdout and stderr on a pseudo-terminal, answering its prompt."""
    import pty
    import select
    import time

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(BIN / "ec"), *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**ec.env, **env},
        cwd=ec.home,
        start_new_session=True,
    )
    os.close(slave)
    output = b""
    answered = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
                if answer is not None and not answered and b"[y/N]" in output:
                    os.write(master, answer.encode() + b"\n")
                    answered = True
            elif proc.poll() is not None:
                break
        else:
            raise AssertionError(f"ec {' '.join(args)} did not finish:\n{output.decode()}")
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return Result(code, output.decode(errors="replace").replace("\r\n", "\n"), "")
