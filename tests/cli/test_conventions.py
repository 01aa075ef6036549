"""``ec`` as gh/kubectl/docker users expect: plain rows when piped, tables on a terminal,
``-q``, ``--version``, completion, exit codes and confirmations."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.cli.conftest import Ec, run_on_terminal
from tests.conftest import BIN, Stack, free_port
from tests.registry.manifest_helpers import Repo

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _shell(ec: Ec, script: str) -> str:
    """Run a bash pipeline with `ec` on PATH, as a user's script would."""
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-o", "pipefail", "-c", script],
        env={**ec.env, "PATH": f"{BIN}:{ec.env.get('PATH', '/usr/bin:/bin')}"},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ec.home,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def user(ec: Ec, cli_stack: Stack) -> str:
    name, _ = cli_stack.create_user()
    ec.login(cli_stack, name)
    return name


def test_version_and_help_document_exit_codes(ec: Ec) -> None:
    out = ec.ok("--version").stdout
    assert re.fullmatch(r"ec \d+\.\d+\.\d+\S*\n", out), out
    text = " ".join(ec.ok("--help").stdout.split())
    for code in (
        "0 success",
        "1 error",
        "2 usage",
        "4 not logged in or credentials refused",
        "5 not found",
    ):
        assert code in text


def test_piped_output_is_plain_rows_for_awk(ec: Ec, cli_stack: Stack, user: str) -> None:
    # Names and digests longer than 80 columns: a wrapped table would split them.
    long_path = "a-rather-long-repository-name-that-would-not-fit-in-eighty-columns"
    names = sorted(f"{user}/{path}" for path in (long_path, "app"))
    digests = {}
    for name in names:
        repo = Repo.create(cli_stack, user, name.split("/", 1)[1])
        digests[name] = repo.put_manifest("v1", repo.image()).headers["docker-content-digest"]

    names_out = _shell(ec, "ec storage registry ls | awk '{print $1}'")
    assert names_out.splitlines() == names
    assert _shell(ec, "ec storage registry ls -q").splitlines() == names
    for line in _shell(ec, "COLUMNS=40 ec storage registry ls").splitlines():
        name, tags, size, pushed = line.split("\t")
        assert name in names and tags == "1" and int(size) > 0 and ISO.match(pushed)

    for name in names:
        line = _shell(ec, f"COLUMNS=40 ec storage registry tags {name}")
        assert line == line.rstrip() + "\n"
        tag, digest, size, pushed = line.rstrip("\n").split("\t")
        assert (tag, digest) == ("v1", digests[name])
        assert int(size) > 0 and ISO.match(pushed)
        assert _shell(ec, f"ec storage registry tags {name} -q") == "v1\n"


def test_service_account_ids_and_create_quiet(ec: Ec, cli_stack: Stack, user: str) -> None:
    token = _shell(
        ec, "ec auth service-accounts create --name ci --scope storage.me.registry=read -q"
    )
    assert re.fullmatch(r"ecloud_\w+\n", token), token
    ec.ok("auth", "service-accounts", "create", "-n", "cd", "-s", "storage.me.registry=read")
    accounts = ec.ok("--json", "auth", "service-accounts", "ls").json()
    ids = _shell(ec, "ec auth service-accounts ls -q").splitlines()
    assert sorted(ids) == sorted(a["id"] for a in accounts)
    assert all(re.fullmatch(r"sa_\w+", i) for i in ids)
    assert _shell(ec, "ec -q auth service-accounts ls").splitlines() == ids
    for line in _shell(ec, "ec auth service-accounts ls").splitlines():
        account_id, name, scopes, created = line.split("\t")
        assert account_id in ids and name in ("ci", "cd") and ISO.match(created)
        assert scopes.endswith(".registry=pull")
    tokens = _shell(ec, f"ec auth tokens ls --service-account {ids[0]} -q").splitlines()
    assert len(tokens) == 1 and tokens[0].startswith("tok_")
    rotated = _shell(ec, f"ec auth service-accounts rotate {ids[0]} --yes -q")
    assert re.fullmatch(r"ecloud_\w+\n", rotated)
    assert "--json and --quiet" in ec.fails("--json", "auth", "service-accounts", "ls", "-q")


def test_times_are_iso_8601(ec: Ec, user: str) -> None:
    status = ec.ok("--json", "auth", "status").json()
    assert ISO.match(status["expires_at"]), status
    human = ec.ok("auth", "status").stdout
    assert re.search(r"Session expires\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", human), human


def test_table_on_a_terminal(ec: Ec, cli_stack: Stack, user: str) -> None:
    repo = Repo.create(cli_stack, user)
    repo.put_manifest("v1", repo.image())
    result = run_on_terminal(ec, "storage", "registry", "ls")
    assert result.code == 0, result.stdout
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)  # the header is bold
    header, row = text.strip().splitlines()[:2]
    assert header.split() == ["NAME", "TAGS", "SIZE", "LAST", "PUSHED"]
    assert row.split()[0] == repo.name and re.search(r"\d+ B|KiB", row)
    assert "\t" not in text


def test_exit_codes(ec: Ec, cli_stack: Stack) -> None:
    # 4: not logged in, or credentials refused.
    assert ec.run("auth", "service-accounts", "ls").code == 4
    assert ec.run("storage", "registry", "ls").code == 4
    assert ec.run("--token", "not-a-token", "auth", "status").code == 4
    assert ec.run("--token", "ecloud_" + "x" * 50, "auth", "status").code == 4
    user, _ = cli_stack.create_user()
    ec.login(cli_stack, user)
    # 5: not found.
    assert ec.run("auth", "service-accounts", "get", "sa_missing").code == 5
    assert ec.run("auth", "tokens", "rm", "tok_missing", "--yes").code == 5
    assert ec.run("storage", "registry", "tags", f"{user}/missing").code == 5
    assert ec.run("storage", "registry", "inspect", f"{user}/missing:v1").code == 5
    # 1: the network, or anything else.
    down = f"http://127.0.0.1:{free_port()}"
    assert ec.run("--auth-url", down, "auth", "status").code == 1
    assert ec.run("--registry-url", down, "storage", "registry", "ls").code == 1
    # 2: usage.
    assert ec.run("no-such-group").code == 2
    assert ec.run("storage", "registry", "rm", "alice/app").code == 2
    assert ec.run("storage", "registry", "tags", "Not A Name").code == 2
    assert ec.run("auth", "tokens", "create", "-a", "sa_x", "--expires-in", "7d").code == 2
    assert ec.run("completion", "tcsh").code == 2


def test_destructive_verbs_need_yes_without_a_terminal(ec: Ec, cli_stack: Stack, user: str) -> None:
    repo = Repo.create(cli_stack, user)
    repo.put_manifest("v1", repo.image())
    account = ec.ok(
        "--json", "auth", "service-accounts", "create", "--name", "ci",
        "--scope", "storage.me.registry=read",
    ).json()  # fmt: skip
    sa, tok = account["service_account"]["id"], account["token"]["id"]
    for args in (
        ("storage", "registry", "rm", f"{repo.name}:v1"),
        ("auth", "service-accounts", "rm", sa),
        ("auth", "service-accounts", "rotate", sa),
        ("auth", "tokens", "rm", tok),
    ):
        result = ec.run(*args)
        assert result.code == 2, (args, result.stderr)
        assert "pass --yes" in result.stderr
    # Nothing was touched.
    assert repo.get_manifest("v1").status_code == 200
    assert [t["id"] for t in ec.ok("--json", "auth", "tokens", "ls", "-a", sa).json()] == [tok]
    assert "Deleted" in ec.ok("storage", "registry", "rm", f"{repo.name}:v1", "--yes").stdout
    assert repo.get_manifest("v1").status_code == 404


def test_destructive_verbs_ask_on_a_terminal(ec: Ec, cli_stack: Stack, user: str) -> None:
    repo = Repo.create(cli_stack, user)
    repo.put_manifest("v1", repo.image())
    refused = run_on_terminal(ec, "storage", "registry", "rm", f"{repo.name}:v1", answer="n")
    assert f"Delete tag {repo.name}:v1? [y/N]" in refused.stdout
    assert refused.code == 1 and "cancelled" in refused.stdout
    assert repo.get_manifest("v1").status_code == 200
    accepted = run_on_terminal(ec, "storage", "registry", "rm", f"{repo.name}:v1", answer="y")
    assert accepted.code == 0, accepted.stdout
    assert f"Deleted {repo.name}:v1." in accepted.stdout
    assert repo.get_manifest("v1").status_code == 404


def test_completion_scripts(ec: Ec) -> None:
    bash = ec.ok("completion", "bash").stdout
    assert "complete -o default -F _ec_completion ec" in bash
    assert "_EC_COMPLETE=complete_bash" in bash
    assert ec.ok("completion", "zsh").stdout.startswith("#compdef ec")
    assert "complete --command ec" in ec.ok("completion", "fish").stdout


def _complete(ec: Ec, *words: str) -> list[str]:
    """What bash offers after `words`, through the script `ec completion bash` prints."""
    line = " ".join(f"'{w}'" for w in words)
    out = _shell(
        ec,
        "source <(ec completion bash)\n"
        f"COMP_WORDS=(ec {line}); COMP_CWORD={len(words)}\n"
        "_ec_completion ec\n"
        'printf "%s\\n" "${COMPREPLY[@]}"',
    )
    return [w for w in out.splitlines() if w]


def test_completion_from_the_server(ec: Ec, cli_stack: Stack) -> None:
    assert "service-accounts" in _complete(ec, "auth", "")
    assert _complete(ec, "auth", "service-accounts", "get", "") == []  # not logged in: nothing
    user, _ = cli_stack.create_user()
    ec.login(cli_stack, user)
    for path in ("app", "api"):
        repo = Repo.create(cli_stack, user, path)
        for tag in ("v1", "v2"):
            repo.put_manifest(tag, repo.image())
    account = ec.ok(
        "--json", "auth", "service-accounts", "create", "--name", "ci",
        "--scope", "storage.me.registry=read",
    ).json()  # fmt: skip
    sa, tok = account["service_account"]["id"], account["token"]["id"]

    assert _complete(ec, "storage", "registry", "tags", "") == [f"{user}/api", f"{user}/app"]
    assert _complete(ec, "storage", "registry", "inspect", f"{user}/app") == [f"{user}/app"]
    assert _complete(ec, "storage", "registry", "rm", f"{user}/app", "") == ["v1", "v2"]
    assert _complete(ec, "auth", "service-accounts", "rotate", "") == [sa]
    assert _complete(ec, "auth", "tokens", "rm", "tok_") == [tok]
    assert _complete(ec, "auth", "tokens", "ls", "--service-account", "") == [sa]
    # zsh and fish pass the word whole: REPOSITORY:TAG completes too.
    zsh = ec.ok(
        _EC_COMPLETE="complete_zsh",
        _TYPER_COMPLETE_ARGS=f"ec storage registry inspect {user}/app:",
    ).stdout.replace("\\", "")  # zsh quotes the colon
    assert f"{user}/app:v1" in zsh and f"{user}/app:v2" in zsh
