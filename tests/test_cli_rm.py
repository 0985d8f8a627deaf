"""The real ``train-rm`` / ``eval-rm`` / ``serve-rm`` commands on a tiny random backbone and a few
hand-made preference pairs: training raises accuracy on the training pairs and writes a loadable
model, a re-run resumes without retraining, eval-rm's numbers equal a direct computation, and bad
input fails with a message naming the file and the line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_rm_evaluation import game24_prefs, shop_prefs  # noqa: E402

CLI = [sys.executable, "-m", "agentcritic.cli"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
TRAIN_FLAGS = [
    "--epochs", "3", "--batch-size", "8", "--lr", "3e-3", "--max-length", "64",
    "--set", "train.logging_steps=2", "--set", "train.num_threads=1", "--set", "train.save_steps=4",
]


def run_cli(*args: str, env: dict | None = None, timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env or ENV, cwd=cwd)


def write_prefs(path: Path, prefs) -> Path:
    path.write_text("".join(p.to_json() + "\n" for p in prefs))
    return path


def direct_accuracy(model_dir: Path, prefs) -> tuple[float, np.ndarray, np.ndarray]:
    from agentcritic.rm import RewardModel

    rm = RewardModel.from_pretrained(model_dir)
    c = rm.score([(p.intent, p.chosen) for p in prefs])
    r = rm.score([(p.intent, p.rejected) for p in prefs])
    return float(np.mean((c > r) + 0.5 * (c == r))), c, r


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from agentcritic.rm.backbone import make_tiny_backbone

    return make_tiny_backbone(tmp_path_factory.mktemp("tiny") / "bert", "bert")


@pytest.fixture(scope="module")
def trained(tiny_bert, tmp_path_factory):
    """One real train-rm run on shop pairs only (game24 stays unseen: the cross-domain env)."""
    root = tmp_path_factory.mktemp("cli_rm")
    train = write_prefs(root / "preferences.jsonl", shop_prefs(96, 0))
    out = root / "rm"
    res = run_cli("train-rm", "--data", str(train), "--out", str(out), "--backbone", str(tiny_bert), *TRAIN_FLAGS)
    assert res.returncode == 0, res.stderr
    return {"root": root, "data": train, "out": out, "stdout": res.stdout, "backbone": tiny_bert}


@pytest.mark.slow
def test_train_rm_writes_a_loadable_model_whose_training_accuracy_rises(trained) -> None:
    from transformers import AutoModelForSequenceClassification

    from agentcritic.rm import RewardModel

    out = trained["out"]
    assert "held-out accuracy" in trained["stdout"] and "model:" in trained["stdout"]
    metrics = json.loads((out / "metrics.json").read_text())
    split = json.loads((out / "split.json").read_text())
    heldout = [json.loads(line) for line in (out / "heldout_preferences.jsonl").read_text().splitlines()]
    # held out by intent, about 10 %, and disjoint from the training intents
    assert split["n_train"] + split["n_heldout"] == 96 and 5 <= split["n_heldout"] <= 15
    assert metrics["train"]["n_eval"] == len(heldout) == split["n_heldout"]
    assert split["train_envs"] == {"shop": split["n_train"]}
    prefs = shop_prefs(96, 0)
    held_intents = {h["intent"] for h in heldout}
    train_prefs = [p for p in prefs if p.intent not in held_intents]
    assert len(train_prefs) == split["n_train"]

    fresh = RewardModel(trained["backbone"], max_length=64, seed=0)  # what training started from
    c = fresh.score([(p.intent, p.chosen) for p in train_prefs])
    r = fresh.score([(p.intent, p.rejected) for p in train_prefs])
    before = float(np.mean((c > r) + 0.5 * (c == r)))
    after, c2, _ = direct_accuracy(out / "model", train_prefs)
    assert after >= 0.7 and after >= before + 0.15, (before, after)
    losses = [e["loss"] for e in metrics["train"]["log_history"] if "loss" in e]
    assert losses[-1] < losses[0]
    # the folder is a plain one-output sequence classifier that scores like our model
    auto = AutoModelForSequenceClassification.from_pretrained(str(out / "model"))
    assert auto.config.num_labels == 1
    rm = RewardModel.from_pretrained(out / "model")
    batch = rm.tokenize([(train_prefs[0].intent, train_prefs[0].chosen)])
    with torch.inference_mode():
        logit = float(auto(**batch).logits[0, 0])
    assert logit == pytest.approx(float(c2[0]), abs=1e-4)
    assert (out / "config.toml").exists()
    assert json.loads((out / "manifest.json").read_text())["stages"]["train_rm"]["done"]


@pytest.mark.slow
def test_rerunning_train_rm_resumes_and_a_changed_config_is_refused(trained) -> None:
    out = trained["out"]
    before = (out / "metrics.json").read_text()
    weights = (out / "model" / "model.safetensors").read_bytes()
    args = ["train-rm", "--data", str(trained["data"]), "--out", str(out), "--backbone", str(trained["backbone"])]
    res = run_cli(*args, *TRAIN_FLAGS)
    assert res.returncode == 0, res.stderr
    assert "this train-rm is done; nothing to do" in res.stdout
    assert (out / "metrics.json").read_text() == before
    assert (out / "model" / "model.safetensors").read_bytes() == weights
    res = run_cli(*args, *TRAIN_FLAGS[:-2], "--set", "train.save_steps=5")
    assert res.returncode == 2 and "another config" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.slow
def test_eval_rm_matches_a_direct_computation_per_source_env_and_cross_domain(trained) -> None:
    root, out = trained["root"], trained["out"]
    shop_file = write_prefs(root / "shop_test.jsonl", shop_prefs(20, 7))
    g24_file = write_prefs(root / "game24_test.jsonl", game24_prefs(10, 8))
    res = run_cli("eval-rm", "--model", str(out), "--data", str(shop_file), "--data", str(g24_file), "--plot")
    assert res.returncode == 0, res.stderr
    (folder,) = out.glob("eval-rm-*")  # one folder per evaluation asked for, beside the model
    report = json.loads((folder / "rm_eval.json").read_text())
    prefs = shop_prefs(20, 7) + game24_prefs(10, 8)
    acc, c, r = direct_accuracy(out / "model", prefs)
    assert report["n"] == 30
    assert report["accuracy"] == pytest.approx(acc)
    assert set(report["per_source"]) == {"truncate", "edit:option"}
    for source, row in report["per_source"].items():
        idx = [i for i, p in enumerate(prefs) if p.source == source]
        assert row["n"] == len(idx)
        assert row["accuracy"] == pytest.approx(float(np.mean((c[idx] > r[idx]) + 0.5 * (c[idx] == r[idx]))))
    g = list(range(20, 30))
    assert report["per_env"]["game24"]["accuracy"] == pytest.approx(float(np.mean(c[g] > r[g])))
    assert report["training_envs"] == ["shop"]
    assert report["cross_domain"]["envs"] == ["game24"] and report["cross_domain"]["n"] == 10
    assert report["cross_domain"]["accuracy"] == report["per_env"]["game24"]["accuracy"]
    assert report["per_file"][str(g24_file)]["n"] == 10
    assert report["n_seen_in_training"] == 0
    assert (folder / "rm_eval.png").read_bytes()[:4] == b"\x89PNG"
    assert "edit:option" in res.stdout and "no (cross-domain)" in res.stdout
    # the held-out file written by train-rm is accepted as is and gives the trainer's held-out accuracy
    res = run_cli("eval-rm", "--model", str(out / "model"), "--data", str(out / "heldout_preferences.jsonl"),
                  "--output", str(root / "held.json"))
    assert res.returncode == 0, res.stderr
    held = json.loads((root / "held.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert held["accuracy"] == pytest.approx(metrics["eval"]["accuracy"])
    assert held["n_seen_in_training"] == 0
    # a relative --out (the demo's runs/demo): the recorded report path is relative to the stage folder,
    # so the CLI and the report stage, which join it to that folder, find the file
    res = run_cli("eval-rm", "--model", str(out / "model"), "--data", str(out / "heldout_preferences.jsonl"),
                  "--out", "rel/rm-eval", cwd=root)
    assert res.returncode == 0, res.stderr
    recorded = json.loads((root / "rel/rm-eval/result.json").read_text())["report"]
    assert recorded == "rm_eval.json"
    assert json.loads((root / "rel/rm-eval" / recorded).read_text())["accuracy"] == pytest.approx(held["accuracy"])


def test_bad_data_files_fail_naming_file_and_line(tmp_path, tiny_bert) -> None:
    good = shop_prefs(3, 0)
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text(good[0].to_json() + "\n" + '{"intent": "x",\n' + good[1].to_json() + "\n")
    res = run_cli("train-rm", "--data", str(bad_json), "--out", str(tmp_path / "a"), "--backbone", str(tiny_bert))
    assert res.returncode == 2
    assert f"{bad_json}:2: invalid JSON" in res.stderr and "Traceback" not in res.stderr

    wrong_type = tmp_path / "traj.jsonl"
    wrong_type.write_text(good[0].to_json() + "\n" + good[0].chosen.to_json() + "\n")
    res = run_cli("train-rm", "--data", str(wrong_type), "--out", str(tmp_path / "b"), "--backbone", str(tiny_bert))
    assert res.returncode == 2 and f"{wrong_type}:2: not a Preference record" in res.stderr

    res = run_cli("eval-rm", "--model", str(tmp_path / "missing"), "--data", str(bad_json))
    assert res.returncode == 2 and "missing does not exist" in res.stderr and not (tmp_path / "missing").exists()

    res = run_cli("train-rm", "--out", str(tmp_path / "c"))
    assert res.returncode == 2 and "field 'data'" in res.stderr

    res = run_cli("train-rm", "--data", str(bad_json), "--out", str(tmp_path / "d"), "--set", "train.batch_size=zero")
    assert res.returncode == 2 and "train.batch_size" in res.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    import httpx

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"serve-rm exited early: {proc.stderr.read()}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise AssertionError("serve-rm did not come up")


@pytest.mark.slow
def test_serve_rm_serves_the_trained_model_behind_a_token(trained) -> None:
    import httpx

    out = trained["out"]
    prefs = shop_prefs(4, 3)
    _, c, _ = direct_accuracy(out / "model", prefs)
    port = _free_port()
    env = {**ENV, "MY_RM_TOKEN": "s3cret"}
    proc = subprocess.Popen(
        [*CLI, "serve-rm", "--model", str(out), "--port", str(port), "--token-env", "MY_RM_TOKEN"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, proc)
        body = [{"intent": p.intent, "trajectory": p.chosen.to_dict()} for p in prefs]
        assert httpx.post(f"{url}/v1/score", json=body, timeout=30).status_code == 401
        r = httpx.post(f"{url}/v1/score", json=body, headers={"Authorization": "Bearer s3cret"}, timeout=30)
        assert r.status_code == 200
        np.testing.assert_allclose(r.json()["scores"], c, atol=1e-5)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # asking for a token from an unset variable is refused before anything loads
    res = run_cli("serve-rm", "--model", str(out), "--port", str(port), "--token-env", "NO_SUCH_VAR_FOR_RM")
    assert res.returncode == 2 and "NO_SUCH_VAR_FOR_RM" in res.stderr
