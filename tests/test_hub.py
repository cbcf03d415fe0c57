"""The Hub: the Space's staged file set and its checks, the deploy and push commands up to the HTTP
call (a recording stand-in for HfApi; the Hub cannot be reached from here), the model cards, and the
app booted from nothing but a staged Space folder."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket

import pytest
import torch
from gradio_client import Client, handle_file
from huggingface_hub import ModelCard
from packaging.requirements import Requirement

from core.engine import checkpoints
from core.hub import cards, push, space, staging
from tests.support import EXAMPLES, ROOT, running_app

SHIPPED = cards.card_folders()
GIB = 1024 ** 3


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """The Space's file set, staged from this repository (and checked) once for the module."""
    return space.stage(tmp_path_factory.mktemp("space") / "stage")


class Recorder:
    """Stands in for huggingface_hub.HfApi: records each call, and what the uploaded folder held."""

    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", repo_id, kw))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kw):
        self.calls.append(("upload_folder", kw["repo_id"], {**kw, "files": staging.file_sizes(kw["folder_path"])}))
        return type("CommitInfo", (), {"commit_url": "https://huggingface.co/commit/0"})()


# ------------------------------------------------------------------ the Space's file set

def test_the_space_holds_exactly_its_file_set(staged):
    tops = {rel.split("/")[0] for rel in staged.sizes}
    expected = {"app.py", "README.md", "core", "assets", "checkpoints", "requirements.txt", ".gitattributes"}
    assert tops == expected | ({"docs"} if (ROOT / "docs").is_dir() else set())
    assert not [r for r in staged.sizes if "__pycache__" in r or r.endswith(".pyc") or "/." in r or ".egg-info" in r]
    for folder in SHIPPED:  # every finished checkpoint, seeds included, with its card
        rel = folder.relative_to(ROOT).as_posix()
        assert {f"{rel}/{n}" for n in push.PUSHED} <= set(staged.sizes), rel
    assert not any(r.startswith("checkpoints/.unfinished") for r in staged.sizes)
    tracked = {p.relative_to(ROOT).as_posix() for p in (ROOT / "core").rglob("*.py")}
    assert tracked <= set(staged.sizes)
    assert staged.errors == [], staged.errors


def test_unfinished_runs_hidden_files_and_caches_stay_behind(tmp_path):
    for rel in ("app.py", "README.md", "core/a.py", "core/__pycache__/a.cpython-311.pyc", "core/x.egg-info/PKG-INFO",
                "checkpoints/done/config.json", "checkpoints/half/config.json", "checkpoints/half/train_state.json",
                "checkpoints/.unfinished/r/config.json", "checkpoints/.done.new/config.json", "tests/test_a.py",
                "bench/b.py", "tools/t.py", "data/cifar-10-batches-bin/x.bin", "assets/.cache/x"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    got = sorted(rel for _, rel in space.space_files(tmp_path))
    assert got == ["README.md", "app.py", "checkpoints/done/config.json", "core/a.py"]


def test_the_space_installs_the_cpu_build_of_the_pinned_torch(staged):
    repo = [Requirement(line) for line in (ROOT / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    lines = (staged.root / "requirements.txt").read_text().splitlines()
    assert lines[0] == "--extra-index-url https://download.pytorch.org/whl/cpu"
    got = {r.name: str(r.specifier) for r in map(Requirement, lines[1:])}
    want = {r.name: str(r.specifier) for r in repo}
    assert set(got) == set(want)
    for name in want:
        assert got[name] == (want[name] + "+cpu" if name in ("torch", "torchvision") else want[name]), name


def test_stage_keeps_a_folder_only_when_it_is_empty_and_needs_a_checkout(tmp_path, capsys):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(SystemExit, match="not empty"):
        space.main(["me/lab", "--dry-run", "--stage", str(tmp_path / "full")])
    with pytest.raises(SystemExit, match="not a resnet-lab checkout"):
        space.stage(tmp_path / "new", root=tmp_path / "full")
    space.main(["me/lab", "--dry-run", "--stage", str(tmp_path / "kept")])
    assert (tmp_path / "kept" / "app.py").is_file() and "nothing was uploaded" in capsys.readouterr().out


def test_requirements_must_pin_torch_to_name_its_cpu_build():
    with pytest.raises(ValueError, match="torch must be pinned"):
        space.space_requirements("torch>=2\n")


# ------------------------------------------------------------------ the checks

def test_the_readme_header_is_what_a_space_needs():
    import gradio

    assert space.check_header(ROOT) == []
    meta = ModelCard.load(ROOT / "README.md").data.to_dict()
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == gradio.__version__ and meta["app_file"] == "app.py"


@pytest.mark.parametrize("edit, message", [
    (lambda h: h.replace("python_version: \"3.11\"\n", ""), "no python_version"),
    (lambda h: h.replace("python_version: \"3.11\"", "python_version: \"3.9\""), "outside requires-python"),
    (lambda h: re.sub(r"sdk_version: .*", "sdk_version: 5.0.0", h), "is not the pinned gradio"),
    (lambda h: h.replace("app_file: app.py", "app_file: main.py"), "main.py is not in the Space"),
    (lambda h: h.replace("sdk: gradio", "sdk: docker"), "not 'gradio'"),
    (lambda h: h.replace("title: ResNet Lab", "title: [unclosed"), "does not parse"),
])
def test_a_bad_header_is_refused(tmp_path, edit, message):
    shutil.copy(ROOT / "requirements.txt", tmp_path)
    shutil.copy(ROOT / "app.py", tmp_path)
    (tmp_path / "README.md").write_text(edit((ROOT / "README.md").read_text()))
    errors = space.check_header(tmp_path)
    assert len(errors) == 1 and message in errors[0], errors


def test_binary_and_large_files_need_an_lfs_rule(tmp_path):
    (tmp_path / "w.safetensors").write_bytes(b"\0" * 10)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "blob.bin").write_bytes(b"a\0b")
    (tmp_path / "big.json").write_text("1" * (staging.LARGE + 1))
    (tmp_path / "small.json").write_text("{}")
    (tmp_path / ".gitattributes").write_text(staging.GITATTRIBUTES)
    staged_ = staging.Staged(tmp_path, sizes=staging.file_sizes(tmp_path))
    problems = staging.lfs_problems(staged_)
    assert problems == ["big.json (over 10 MiB) matches no LFS rule of .gitattributes",
                        "sub/blob.bin (binary) matches no LFS rule of .gitattributes"]
    assert staged_.large == ["big.json"] and "over 10 MiB (uploaded through LFS/Xet): big.json" in staging.listing(staged_)
    (tmp_path / ".gitattributes").write_text(staging.GITATTRIBUTES + "sub/*.bin filter=lfs -text\n/big.json filter=lfs\n")
    assert staging.lfs_problems(staged_) == []


def test_gitattributes_patterns_match_as_git_does():
    assert staging.matches("*.png", "assets/examples/cat.png") and staging.matches("*.png", "x.png")
    assert staging.matches("assets/*.npz", "assets/a.npz") and not staging.matches("assets/*.npz", "b/assets/a.npz")
    assert not staging.matches("*.png", "x.png.txt")


def test_a_stale_card_or_a_damaged_checkpoint_stops_the_deploy_before_any_call(tmp_path):
    root = tmp_path / "repo"
    for name in ("app.py", "README.md", "requirements.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "checkpoints" / "resnet20", root / "checkpoints" / "resnet20")
    shutil.copytree(ROOT / "checkpoints" / "plain20", root / "checkpoints" / "plain20")
    history = root / "checkpoints" / "resnet20" / checkpoints.HISTORY
    history.write_text(history.read_text().replace("\n64000,", "\n64000,9"))  # a retrained log: the card is stale
    weights = root / "checkpoints" / "plain20" / checkpoints.WEIGHTS
    weights.write_bytes(weights.read_bytes()[:-8] + b"\1" * 8)
    api = Recorder()
    with pytest.raises(SystemExit, match="nothing was uploaded") as e:
        space.deploy("me/lab", tmp_path / "stage", root=root, api=api)
    assert "checkpoints/resnet20/README.md is missing or out of date" in str(e.value)
    assert "plain20" in str(e.value) and "sha256" in str(e.value)
    assert api.calls == []


# ------------------------------------------------------------------ deploy and push, up to the HTTP call

def _no_network(monkeypatch) -> list:
    tried, connect = [], socket.socket.connect

    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            tried.append(address)
            raise OSError("network blocked by the test")
        return connect(self, address)
    monkeypatch.setattr(socket.socket, "connect", guarded)
    return tried


def test_the_dry_run_lists_and_checks_offline_and_uploads_nothing(monkeypatch, capsys):
    tried = _no_network(monkeypatch)
    space.main(["me/resnet-lab", "--dry-run"])
    out = capsys.readouterr().out
    n, total = re.search(r"^(\d+) files, ([\d.]+) MiB in all$", out, re.M).groups()
    listed = re.findall(r"^  (\S+)\s+[\d.]+ (?:B|KiB|MiB)$", out, re.M)
    assert int(n) == len(listed) > 100 and "checkpoints/resnet110/model.safetensors" in listed
    assert float(total) > 10 and "nothing was uploaded" in out and not tried


def test_deploy_creates_a_gradio_space_and_uploads_the_staged_set_in_one_commit(tmp_path, staged):
    api = Recorder()
    space.deploy("me/resnet-lab", tmp_path / "stage", api=api)
    (create, repo, kw), (upload, repo2, up) = api.calls
    assert (create, repo, upload, repo2) == ("create_repo", "me/resnet-lab", "upload_folder", "me/resnet-lab")
    assert kw == {"repo_type": "space", "space_sdk": "gradio", "exist_ok": True, "private": False}
    assert up["repo_type"] == "space" and up["delete_patterns"] == "*"  # a redeploy drops files no longer in the set
    assert up["files"] == staged.sizes


def test_push_stages_a_checkpoint_as_a_model_repo_that_from_pretrained_loads(tmp_path):
    folder = ROOT / "checkpoints" / "resnet20"
    api = Recorder()
    push.push(folder, "me/resnet20", tmp_path / "stage", api=api)
    (_, _, kw), (_, _, up) = api.calls
    assert kw["repo_type"] == "model" and up["repo_type"] == "model" and up["delete_patterns"] == "*"
    assert set(up["files"]) == set(push.PUSHED) | {".gitattributes"}
    net = push.HubResNet.from_pretrained(str(tmp_path / "stage"))
    want = checkpoints.load(folder).model.state_dict()
    assert net.state_dict().keys() == want.keys()
    assert all(torch.equal(a, want[k]) for k, a in net.state_dict().items())


def test_push_refuses_an_unfinished_run_and_a_stale_card(tmp_path):
    unfinished = ROOT / "checkpoints" / ".unfinished"
    src = next((p for p in sorted(unfinished.iterdir()) if p.is_dir()), None) if unfinished.is_dir() else None
    folder = tmp_path / "run"
    shutil.copytree(src or ROOT / "checkpoints" / "resnet20", folder)
    if src is None:  # no unfinished run shipped: make one
        (folder / checkpoints.STATE_JSON).write_text("{}")
    api = Recorder()
    with pytest.raises(SystemExit) as e:
        push.push(folder, "me/run", tmp_path / "stage", api=api)
    assert "an unfinished run" in str(e.value) and "README.md is missing or out of date" in str(e.value)
    assert api.calls == []


# ------------------------------------------------------------------ model cards

def test_every_shipped_checkpoint_has_an_up_to_date_card():
    assert len(SHIPPED) >= 10
    assert cards.stale() == [], "run resnet-lab-cards"


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda f: f.name)
def test_the_card_carries_the_measured_errors_and_the_paper(folder):
    card = ModelCard.load(folder / cards.CARD)
    metrics = json.loads((folder / checkpoints.METRICS).read_text())
    data = card.data
    assert data.datasets == ["cifar10"] and data.library_name == "pytorch" and "arxiv:1512.03385" in data.tags
    got = {r.dataset_split: r.metric_value for r in data.eval_results}
    assert got == {"test": metrics["test_error_pct"], "train": metrics["train_error_pct"]}
    assert f"| {metrics['iterations']:,} |" in card.text  # the log reaches the last iteration
    assert "## Recipe" in card.text and "## Where it differs from the paper" in card.text


def test_a_retrained_folder_gets_a_stale_card_until_the_command_runs(tmp_path):
    shutil.copytree(ROOT / "checkpoints" / "plain20", tmp_path / "plain20")
    assert cards.stale(tmp_path) == []
    metrics = json.loads((tmp_path / "plain20" / checkpoints.METRICS).read_text())
    metrics["test_error_pct"] = 12.34
    (tmp_path / "plain20" / checkpoints.METRICS).write_text(json.dumps(metrics))
    assert cards.stale(tmp_path) == [tmp_path / "plain20"]
    with pytest.raises(SystemExit, match="1 card"):
        cards.main([str(tmp_path), "--check"])
    cards.main([str(tmp_path)])
    assert cards.stale(tmp_path) == [] and "12.34" in (tmp_path / "plain20" / cards.CARD).read_text()
    (tmp_path / "plain20" / checkpoints.METRICS).write_text("{ broken")  # unreadable: stale, not a crash
    assert cards.stale(tmp_path) == [tmp_path / "plain20"]


# ------------------------------------------------------------------ the app, booted from the staged folder

def _peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.M).group(1)) * 1024


@pytest.mark.e2e
def test_the_app_boots_from_the_staged_space_alone(staged, tmp_path):
    """app.py from the staged folder, with no path back into the repository: no PYTHONPATH, no data/,
    none of the app's own variables. It must serve, classify, and open every research view; the
    process's peak RSS after touching every tab must fit a free CPU Space (16 GB)."""
    from core.ui.research_tabs import VIEWS

    assert not (staged.root / "data").exists()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("RESNET_LAB_")}
    log = tmp_path / "space.log"
    cat = handle_file(str(EXAMPLES / "cifar_cat.png"))
    with running_app(log, cwd=staged.root, environ=env) as (url, proc):
        client = Client(url, verbose=False)
        label_p, label_r, _, info = client.predict(cat, "plain56", "resnet56", api_name="/classify")
        assert label_p["label"] and label_r["label"] == "cat", (label_r, info)
        for view in VIEWS:  # each with its controls' defaults
            out = client.predict(api_name=f"/{view.key}")
            assert out is not None, view.key
        client.predict(cat, "plain56", "resnet56", "Integrated Gradients", "predicted", "blend", "absolute",
                       8, 4, 0.15, 8, "layer3", api_name="/explain")
        client.predict(cat, "plain20", "resnet20", "predicted", "absolute", False, 8, 4, 0.15, 8, "layer3",
                       api_name="/faithfulness")
        client.predict(cat, "plain56", "resnet56", "gaussian_noise", 3, 0, api_name="/corrupt")
        client.predict(cat, "plain56", "resnet56", api_name="/architecture")
        client.predict(None, "test batch", "trained", 56, "batch", api_name="/gradient_flow")
        peak = _peak_rss(proc.pid)
    text = log.read_text()
    code = re.search(r"code: (\S+); checkpoints: (\S+) \((\d+) models\)", text)
    assert code, text[-2000:]
    assert code.group(1) == str(staged.root / "core") and code.group(2) == str(staged.root / "checkpoints")
    assert int(code.group(3)) == len(checkpoints.list_folders())
    print(f"peak RSS of the Space's app after every tab: {peak / GIB:.2f} GiB")
    assert peak < 16 * 10**9
