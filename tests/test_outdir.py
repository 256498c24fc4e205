"""The output-folder policy (wavehub.outdir) through the commands and functions that write folders.

A folder that is not a previous wavehub output of the same kind is refused (``--force`` replaces it), the
destination is checked before the work, and an interrupted write (an exception, or a process killed between any
two steps) leaves the old folder or the new one, never neither, and no hidden copy as the only one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _tiny import tiny_timm_vit, tiny_wave

import wavehub
from wavehub import errors, outdir
from wavehub.artifact import CONFIG_FILE, TENSOR_FILE, load_learngene, save_learngene
from wavehub.cli import main
from wavehub.export import save_timm, save_transformers


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture(scope="module")
def model():
    return wavehub.create_model(tiny_wave(), depth=2, width=128, num_classes=3).eval()


@pytest.fixture(scope="module")
def ancestry(tmp_path_factory):
    return "local-dir:" + str(save_timm(tiny_timm_vit(), tmp_path_factory.mktemp("anc") / "tiny"))


@pytest.fixture
def seeded(hub, tmp_path):
    hub.create_repo("wavehub/tiny")
    hub.commit("wavehub/tiny", save_learngene(tiny_wave(), tmp_path / "lg"))
    return hub


def run(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def user_error(rc: int, out: str, err: str) -> str:
    lines = err.strip().splitlines()
    assert rc == 1 and out == "" and "Traceback" not in err, (rc, out, err)
    assert lines[0].startswith("error: ") and len(lines) <= 2, err
    return err


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".wavehub-" in p.name)


def _never(*_a, **_k):
    raise AssertionError("the work started before the destination was checked")


# ------------------------------------------------------------------ user files are never replaced silently


def test_extract_refuses_a_folder_with_the_users_config(capsys, tmp_path, ancestry, monkeypatch):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "config.json").write_text('{"my": "settings"}')
    extract = ("extract", "--ancestry", ancestry, "--img-size", "32", "--out", d)
    monkeypatch.setattr("wavehub.extract.extract_learngene", _never)
    err = user_error(*run(capsys, *extract, "--templates", "4"))
    assert "is not empty" in err and "--force" in err
    assert (d / "config.json").read_text() == '{"my": "settings"}'
    monkeypatch.undo()
    rc, out, _ = run(capsys, *extract, "--templates", "4", "--force")
    assert rc == 0 and "wrote" in out
    assert sorted(p.name for p in d.iterdir()) == ["README.md", "config.json", "learngene.safetensors"]
    assert load_learngene(d).method == "wave" and _leftovers(tmp_path) == []
    # a previous learngene is ours to replace without --force
    rc, _, _ = run(capsys, *extract, "--templates", "2")
    assert rc == 0 and json.loads((d / CONFIG_FILE).read_text())["wave"]["types"]["qkv"]["n"] == 2


@pytest.mark.parametrize("lone", ["README.md", "config.json"])
def test_pull_out_refuses_a_folder_holding_a_lone_user_file(capsys, seeded, tmp_path, lone, monkeypatch):
    d = tmp_path / "model"
    d.mkdir()
    (d / lone).write_text("the user's own file\n")
    monkeypatch.setattr("wavehub.api.from_learngene", _never)
    err = user_error(
        *run(capsys, "pull", "hf-hub:wavehub/tiny", "-q", "--depth", "2", "--width", "128", "--out", d)
    )
    assert "does not hold a wavehub timm export" in err
    assert (d / lone).read_text() == "the user's own file\n" and sorted(os.listdir(d)) == [lone]
    monkeypatch.undo()
    rc, out, _ = run(
        capsys, "pull", "hf-hub:wavehub/tiny", "-q", "--depth", "2", "--width", "128", "--out", d, "--force"
    )
    assert rc == 0 and (d / "model.safetensors").is_file() and "wavehub" in (d / "README.md").read_text()


def test_force_never_deletes_a_tree(model, tmp_path):
    d = tmp_path / "home"
    (d / "projects").mkdir(parents=True)
    (d / "notes.txt").write_text("keep")
    with pytest.raises(errors.OutputError, match="directory tree"):
        save_timm(model, d, force=True)
    assert (d / "notes.txt").read_text() == "keep" and (d / "projects").is_dir()


def test_api_force_and_kinds(model, tmp_path):
    d = tmp_path / "m"
    save_timm(model, d)
    with pytest.raises(
        errors.OutputError, match="transformers export"
    ):  # a timm folder is not a transformers one
        save_transformers(model, d)
    save_transformers(model, d, force=True)
    assert (d / "preprocessor_config.json").is_file()
    save_transformers(model, d)  # now it is a previous transformers export
    with pytest.raises(errors.OutputError, match="does not hold a learngene"):
        save_learngene(tiny_wave(), d)
    assert (d / "preprocessor_config.json").is_file()


# ------------------------------------------------------------------------------ checked before the work


def test_extract_out_at_an_existing_file_fails_before_work(capsys, tmp_path, ancestry, monkeypatch):
    f = tmp_path / "file"
    f.write_text("x")
    monkeypatch.setattr("wavehub.extract.extract_learngene", _never)
    err = user_error(*run(capsys, "extract", "--ancestry", ancestry, "--out", f))
    assert "is not a folder" in err and f.read_text() == "x"


def test_fit_out_file_is_checked_before_the_fit(capsys, tmp_path, monkeypatch):
    lg = save_learngene(tiny_wave(), tmp_path / "lg")
    f = tmp_path / "out.txt"
    f.write_text("x")
    monkeypatch.setattr("wavehub.fit.fit_scalers", _never)
    monkeypatch.setattr("wavehub.api.load_learngene", _never)
    err = user_error(
        *run(capsys, "fit", lg, "--depth", "2", "--width", "128", "--data", "digits", "--out", f)
    )
    assert "is not a folder" in err


def test_build_out_is_checked_before_loading_the_ancestry(tmp_path, monkeypatch):
    from wavehub.distill import build_learngene

    d = tmp_path / "notes"
    d.mkdir()
    (d / "todo.txt").write_text("keep")
    monkeypatch.setattr("wavehub.distill.ddp.setup", _never)
    with pytest.raises(errors.OutputError, match="wavehub build"):
        build_learngene("timm:never-loaded", out=d)


def _unwritable(tmp_path: Path) -> Path:
    if os.geteuid() == 0:  # root writes through file modes; sysfs refuses new entries even to root
        return Path("/sys/wavehub-test-out")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    return ro / "out"


def test_unwritable_destination_is_a_typed_error_before_work(capsys, seeded, tmp_path, model, monkeypatch):
    target = _unwritable(tmp_path)
    with pytest.raises(errors.OutputError, match="cannot write"):
        save_timm(model, target)
    monkeypatch.setattr("wavehub.api.from_learngene", _never)
    err = user_error(
        *run(capsys, "pull", "hf-hub:wavehub/tiny", "-q", "--depth", "2", "--width", "128", "--out", target)
    )
    assert "cannot write" in err and "hint:" in err


def test_a_path_below_a_file_is_refused(model, tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(errors.OutputError, match="is a file"):
        save_timm(model, tmp_path / "f" / "sub" / "m")


# ------------------------------------------------------------------------------------ interrupted writes


def test_interrupted_swap_leaves_the_old_export(model, tmp_path, monkeypatch):
    d = save_timm(model, tmp_path / "m")
    before = (d / "model.safetensors").read_bytes()

    def boom(new, out):
        raise KeyboardInterrupt

    monkeypatch.setattr(outdir, "swap_in", boom)
    m2 = wavehub.create_model(tiny_wave(seed=3), depth=2, width=128, num_classes=3)
    with pytest.raises(KeyboardInterrupt):
        save_timm(m2, d)
    assert (d / "model.safetensors").read_bytes() == before and _leftovers(tmp_path) == []


def test_exchange_swaps_in_one_step(tmp_path):
    if outdir._RENAMEAT2 is None:
        pytest.skip("no renameat2 here: the two-rename fallback applies")
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("new")
    (b / "x").write_text("old")
    assert outdir._exchange(a, b)
    assert (b / "x").read_text() == "new" and (a / "x").read_text() == "old"


_KILLER = """
import os, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from _tiny import tiny_wave
from wavehub import outdir
from wavehub.artifact import save_learngene
step = {step!r}
if step == "after-tensor-file":
    real = Path.write_bytes
    def write_bytes(self, data):
        n = real(self, data)
        if self.name == "learngene.safetensors":
            os._exit(9)
        return n
    Path.write_bytes = write_bytes
elif step == "between-renames":
    outdir._exchange = lambda a, b: False
    real = os.rename
    def rename(a, b):
        real(a, b)
        if ".wavehub-old-" in str(b):
            os._exit(9)
    os.rename = rename
save_learngene(tiny_wave(seed=7), {out!r})
"""


@pytest.mark.parametrize("step", ["after-tensor-file", "between-renames"])
def test_resave_killed_midway_keeps_the_previous_learngene(tmp_path, step):
    d = save_learngene(tiny_wave(), tmp_path / "lg")
    sha = load_learngene(d).sha256
    code = textwrap.dedent(_KILLER).format(tests=str(Path(__file__).parent), step=step, out=str(d))
    p = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"PYTHONPATH": str(Path(wavehub.__file__).parents[1])},
    )
    assert p.returncode == 9, p.stderr
    if step == "between-renames":  # the one window of the fallback swap: the old folder is hidden beside
        assert not d.exists() and any(".wavehub-old-" in n for n in _leftovers(tmp_path))
        outdir.clean_leftovers(d)  # what the next write to the same folder does first
    assert load_learngene(d).sha256 == sha  # the previous learngene, intact
    save_learngene(tiny_wave(seed=8), d)
    assert _leftovers(tmp_path) == [] and load_learngene(d).sha256 != sha


def test_build_resave_keeps_the_checkpoint(tmp_path):
    d = tmp_path / "b"
    d.mkdir()
    (d / "build_checkpoint.safetensors").write_bytes(b"ckpt")
    (d / "build_log.jsonl").write_text('{"step": 1}\n')
    save_learngene(tiny_wave(), d, kind="build")
    assert (d / "build_checkpoint.safetensors").read_bytes() == b"ckpt"
    assert sorted(os.listdir(d)) == [
        "README.md",
        "build_checkpoint.safetensors",
        "build_log.jsonl",
        CONFIG_FILE,
        TENSOR_FILE,
    ]
