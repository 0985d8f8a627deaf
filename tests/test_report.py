"""The HTML report: self-contained, rendered by headless Chromium with its plots and table present."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from agentcritic.config import validate
from agentcritic.evaluate import EvalConfig, run_evaluation
from agentcritic.report import ReportError, build_report

TESTS = Path(__file__).parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run folder as the pipeline leaves it: evaluation, synthesis and RM stats in sub-folders."""
    run = tmp_path_factory.mktemp("run")
    cfg = validate(EvalConfig, {
        "envs": ["game24", "shop"], "policy": "random", "limit": 3, "target": {"kind": "env"},
        "methods": [{"method": "eval_planners:make", "label": "Greedy", "params": {"n": 1}},
                    {"method": "eval_planners:make", "label": "ARMAP-B", "params": {"n": 4}}],
    })
    run_evaluation(cfg, run / "evaluate", progress=False)
    (run / "synth-shop").mkdir()
    (run / "synth-shop" / "synth_stats.json").write_text(json.dumps({
        "env": "shop", "pairs": 42, "verification": {"checked": 30, "rate": 0.97, "verified": 29},
        "per_source": {"edit:option": 20, "cross_policy": 12, "truncate": 10},
        "trajectories": {"explored": 60, "positives": 30},
    }))
    (run / "rm-eval").mkdir()
    (run / "rm-eval" / "rm_eval.json").write_text(json.dumps({
        "n": 40, "accuracy": 0.875, "mean_margin": 1.5,
        "per_source": {"edit:option": {"n": 20, "accuracy": 0.9, "mean_margin": 2.0},
                       "truncate": {"n": 20, "accuracy": 0.85, "mean_margin": 1.0}},
        "per_env": {"shop": {"n": 40, "accuracy": 0.875, "mean_margin": 1.5}},
        "histogram": {"edges": [-2.0, -1.0, 0.0, 1.0, 2.0], "chosen": [1, 3, 10, 26], "rejected": [20, 12, 6, 2]},
    }))
    _self_regulation_stages(run)
    return run


def _self_regulation_stages(run: Path) -> None:
    """What train-prm, train-helper and eval-helper leave in their folders (small, hand-made numbers)."""
    from agentcritic.helper.evaluate_helper import summarise_rows
    from agentcritic.helper.prm import plot_reliability

    (run / "prm").mkdir()
    reliability = {"ece": 0.04, "bins": [{"mean_predicted": 0.2, "observed": 0.25, "count": 30},
                                         {"mean_predicted": 0.7, "observed": 0.65, "count": 50}]}
    (run / "prm" / "metrics.json").write_text(json.dumps({
        "sizes": {"train_examples": 400, "eval_examples": 80, "held_out_tasks": 4},
        "eval": {"auroc": 0.812, "brier": 0.17, "reliability": reliability}}))
    plot_reliability(reliability, run / "prm" / "reliability.png", auroc=0.812)
    (run / "helper").mkdir()
    (run / "helper" / "helper.json").write_text(json.dumps({"kind": "classifier", "backbone": "minilm"}))
    (run / "helper" / "metrics.json").write_text(json.dumps({"eval": {"balanced_accuracy": 0.925, "n": 300}}))
    (run / "helper" / "dp.json").write_text(json.dumps({"budgets": [
        {"budget": 0, "predicted_success": 0.1, "mean_usage": 0.0},
        {"budget": 1, "predicted_success": 0.6, "mean_usage": 0.9}]}))
    episodes = [{"method": m, "budget": c, "success": ok, "interventions": k, "cost": float(k), "steps": 5}
                for m, c, ok, k in [("never", "0", False, 0), ("never", "0", True, 0), ("always", "1", True, 1),
                                    ("always", "1", False, 1), ("helper", "1", True, 1), ("helper", "1", True, 0)]]
    rows = summarise_rows(episodes, [0, 1])
    (run / "eval-helper").mkdir()
    (run / "eval-helper" / "results.json").write_text(json.dumps({
        "env": "household", "split": "test", "tasks": 2, "budgets": ["0", "1"], "methods": ["never", "always", "helper"],
        "results": rows, "policy": "smollm2", "intervention": "expert",
        "dp_train": [{"budget": "1", "predicted_success": 0.6, "success_rate": 0.55, "predicted_interventions": 0.9,
                      "mean_interventions": 0.95}]}))


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[dict[str, str]] = []
        self.rows: list[list[str]] = []
        self.links: list[str] = []
        self._row: list[str] | None = None
        self._cell = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        if tag in ("script", "link", "iframe") or "href" in a:
            self.links.append(f"{tag} {a}")
        if tag == "tr":
            self._row = []
        if tag in ("td", "th") and self._row is not None:
            self._cell = True
            self._row.append("")

    def handle_endtag(self, tag):
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        if tag in ("td", "th"):
            self._cell = False

    def handle_data(self, data):
        if self._cell and self._row is not None:
            self._row[-1] += data


def _chromium(*args: str) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=120,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_report_is_one_self_contained_file(run_dir) -> None:
    report = build_report(run_dir)
    assert report.path == run_dir / "report.html" and report.records == 12
    text = report.path.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text), "the report must not load anything external"
    page = _Collect()
    page.feed(text)
    assert page.links == []
    # The Markdown table printed on stdout has the same rows as the HTML one.
    md_rows = [line.split(" | ")[1] for line in report.markdown.splitlines()[2:]]
    assert md_rows == ["Greedy", "ARMAP-B"]
    assert "| random | ARMAP-B |" in report.markdown and "Shop reward ×100" in report.markdown


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is missing: scripts/test.sh installs it")
def test_chromium_renders_the_plots_table_and_trajectories(run_dir, tmp_path) -> None:
    from PIL import Image

    report = build_report(run_dir)
    res = _chromium("--dump-dom", report.path.resolve().as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    dom = _Collect()
    dom.feed(res.stdout)
    # the results table, as the browser parsed it
    results = [r for r in dom.rows if len(r) > 2 and r[0] == "random"]
    assert [r[1] for r in results] == ["Greedy", "ARMAP-B"]
    header = next(r for r in dom.rows if r[:2] == ["policy", "method"])
    assert header[2:5] == ["Game24 success %", "Shop reward ×100", "Shop success %"]
    assert ["shop", "42", "60", "30", "0.970"] in dom.rows  # synthesis: env, pairs, explored, positives, verified
    assert ["edit:option", "20"] in dom.rows  # pairs per negative source
    assert ["40", "0.875", "1.500"] in dom.rows  # RM held-out accuracy
    assert ["truncate", "20", "0.850", "1.000"] in dom.rows  # RM accuracy per source
    # every plot is an inline PNG that decodes to a real image
    alts = sorted(img["alt"] for img in dom.imgs)
    assert {"methods per env metric", "score vs cost", "reward-model score vs env reward"} <= set(alts)
    assert "synthesis pairs per source synth-shop" in alts and "RM accuracy per source rm-eval" in alts
    assert "RM score histograms rm-eval" in alts
    # self-regulation: the PRM, the helper, the DP and every method x budget, with their plots
    assert ["0.812", "0.170", "0.040", "80", "4", "400"] in dom.rows  # PRM AUROC, Brier, ECE, sizes
    assert ["minilm", "0.925", "300"] in dom.rows  # helper balanced accuracy vs the DP labels
    assert ["1", "0.600", "0.900"] in dom.rows  # the DP's predicted success and usage at budget 1
    assert ["helper", "1", "1.000", "0.500", "1", "2"] in dom.rows and ["never", "1", "0.500", "0.000", "0", "2"] in dom.rows
    assert ["1", "0.600", "0.550", "0.900", "0.950"] in dom.rows  # DP predicted vs measured
    assert {"success vs interventions", "PRM reliability prm"} <= set(alts)
    for img in dom.imgs:
        head, _, data = img["src"].partition(",")
        assert head == "data:image/png;base64"
        picture = Image.open(io.BytesIO(base64.b64decode(data)))
        assert picture.size[0] > 100 and picture.size[1] > 100
        lo, hi = picture.convert("L").getextrema()
        assert hi - lo > 50  # not a blank image
    # example trajectories: the same task side by side under both methods
    assert re.search(r'<div class="traj"[^>]*>\s*<div class="method"><h4>Greedy</h4>.*?<h4>ARMAP-B</h4>', res.stdout, re.S)

    shot = tmp_path / "shot.png"
    res = _chromium(f"--screenshot={shot}", "--window-size=1280,2000", report.path.resolve().as_uri())
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    pixels = Image.open(shot).convert("L")
    lo, hi = pixels.getextrema()
    assert hi - lo > 100 and len(pixels.histogram()) == 256 and sum(1 for c in pixels.histogram() if c) > 20  # painted


def test_report_command_prints_markdown_and_the_path(run_dir) -> None:
    res = subprocess.run([sys.executable, "-m", "agentcritic.cli", "report", str(run_dir), "--out",
                          str(run_dir / "other.html")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "| random | Greedy |" in res.stdout and f"Report: {run_dir / 'other.html'}" in res.stdout
    assert (run_dir / "other.html").stat().st_size > 10_000


def test_nothing_to_report_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ReportError, match="nothing to report"):
        build_report(tmp_path)
    res = subprocess.run([sys.executable, "-m", "agentcritic.cli", "report", str(tmp_path / "missing")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "no such run folder" in res.stderr and "Traceback" not in res.stderr
