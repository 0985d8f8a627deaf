"""The HTML report: read from the typed results the real stages wrote, dispatched on the kind the
manifest records; self-contained; rendered by headless Chromium with a short overview first (every
row one line), each stage's own section below, its plots and tables present."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from agentcritic.evaluate import load_records
from agentcritic.intervals import bootstrap_mean, wilson
from agentcritic.report.html import SECTIONS, ReportError, build_report
from agentcritic.report.tables import INTERVAL_NOTE
from agentcritic.stage_results import KIND_RESULTS, read_result

TESTS = Path(__file__).parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The stage folders of the run, in pipeline order, and their kinds.
STAGES = {"evaluate": "evaluate", "synth-game24": "synthesize", "rm": "train-rm", "rm-eval": "eval-rm",
          "rollouts": "rollout", "collect": "collect", "prm": "train-prm", "helper": "train-helper",
          "eval-helper": "eval-helper"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run of every stage kind but the report, through the real pipeline, on tiny budgets (~10 s):
    random policies and explorers, a tiny BERT for the reward model, the PRM and the helper."""
    from agentcritic.pipeline import parse_pipeline, run_pipeline
    from agentcritic.rm.backbone import make_tiny_backbone

    root = tmp_path_factory.mktemp("report")
    tiny = str(make_tiny_backbone(root / "tiny-bert", "bert"))
    stages = [
        {"kind": "evaluate", "envs": ["game24", "shop"], "policy": "random", "limit": 3, "target": {"kind": "env"},
         "methods": [{"method": "greedy"}, {"method": "best_of_n", "params": {"n": 4}}]},
        {"kind": "synthesize", "name": "synth-game24", "env": "game24", "tasks": 4, "trajectories_per_task": 1,
         "explorer": "random", "guided_per_task": 2, "llm_intents": False, "rephrase": False,
         "negatives": ["edit", "cross_policy", "truncate"]},
        {"kind": "train-rm", "name": "rm", "data": ["synth-game24/preferences.jsonl"], "backbone": tiny,
         "max_length": 64, "train": {"num_epochs": 1, "batch_size": 8, "eval_fraction": 0.3, "progress": False}},
        {"kind": "eval-rm", "name": "rm-eval", "model": "rm", "data": ["rm/heldout_preferences.jsonl"], "progress": False},
        {"kind": "rollout", "name": "rollouts", "env": "game24", "policy": "random", "limit": 3},
        {"kind": "collect", "env": "household", "policy": "random", "limit": 3, "n": 1, "p_grid": [0, 1]},
        {"kind": "train-prm", "name": "prm", "data": "collect", "backbone": tiny, "max_length": 64,
         "training": {"num_epochs": 1, "batch_size": 8, "progress": False}},
        {"kind": "train-helper", "name": "helper", "data": "collect", "prm": "prm",
         "helper": {"backbone": tiny, "max_steps": 2, "batch_size": 8, "max_length": 64, "labels": {"budget": 1}}},
        {"kind": "eval-helper", "data": "collect", "prm": "prm", "helper": "helper", "limit": 1,
         "budgets": [0, 1, "inf"], "train_limit": 1},
    ]
    pipeline, configs = parse_pipeline({"stages": stages})
    run = root / "run"
    run_pipeline(pipeline, configs, out=run, echo=lambda _: None, progress=False)
    return run


def test_every_stage_kind_has_its_section_and_every_stage_left_its_typed_result(run_dir) -> None:
    assert set(SECTIONS) | {"report"} == set(KIND_RESULTS)  # the report stage is the page itself
    manifest = json.loads((run_dir / "manifest.json").read_text())["stages"]
    assert {name: entry["kind"] for name, entry in manifest.items()} == STAGES
    for name, kind in STAGES.items():
        assert isinstance(read_result(run_dir / name), KIND_RESULTS[kind])


class _Collect(HTMLParser):
    """The images, table rows (all, and per table id), in-page links and element ids of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[dict[str, str]] = []
        self.rows: list[list[str]] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.links: list[str] = []
        self.anchors: list[str] = []
        self.ids: set[str] = set()
        self.pre: dict[str, str] = {}
        self._row: list[str] | None = None
        self._cell = False
        self._table: str | None = None
        self._pre: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "img":
            self.imgs.append(a)
        if tag in ("link", "iframe") or (tag == "script" and a.get("src")) or (
                "href" in a and not a["href"].startswith("#")):
            self.links.append(f"{tag} {a}")
        if tag == "a" and a.get("href", "").startswith("#"):
            self.anchors.append(a["href"][1:])
        if tag == "table":
            self._table = a.get("id") or ""
        if tag == "pre" and a.get("id"):
            self._pre = a["id"]
            self.pre[self._pre] = ""
        if tag == "tr":
            self._row = []
        if tag in ("td", "th") and self._row is not None:
            self._cell = True
            self._row.append("")

    def handle_endtag(self, tag):
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            if self._table:
                self.tables.setdefault(self._table, []).append(self._row)
            self._row = None
        if tag in ("td", "th"):
            self._cell = False
        if tag == "table":
            self._table = None
        if tag == "pre":
            self._pre = None

    def handle_data(self, data):
        if self._cell and self._row is not None:
            self._row[-1] += data
        if self._pre:
            self.pre[self._pre] += data


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


def _cell(value: object) -> str:
    """A number as the report's small tables show it."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def _interval(bounds: tuple[float, float]) -> str:
    return f"{bounds[0]:.3f}–{bounds[1]:.3f}"


def _row(*values: object) -> list[str]:
    return [_cell(v) for v in values]


def test_report_is_one_self_contained_file(run_dir) -> None:
    report = build_report(run_dir)
    assert report.path == run_dir / "report.html" and report.records == 12
    text = report.path.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text), "the report must not load anything external"
    page = _Collect()
    page.feed(text)
    assert page.links == [] and "<script" not in text
    # every overview link leads to its stage's section
    assert page.anchors == [f"stage-{name}" for name in STAGES] and set(page.anchors) <= page.ids
    # The Markdown table printed on stdout has the same rows as the HTML one, and every env cell its
    # mean over the 3 tasks, its 95 % interval and n (Wilson for success, bootstrap for rewards).
    table_lines, _, note = report.markdown.partition("\n\n")
    md_rows = [line.split(" | ") for line in table_lines.splitlines()[2:]]
    assert [r[1] for r in md_rows] == ["Greedy", "ARMAP-B"]
    assert "| random | ARMAP-B |" in report.markdown and "Shop reward ×100" in report.markdown
    assert note.strip() == INTERVAL_NOTE
    records = load_records(run_dir / "evaluate" / "results.jsonl")
    for row in md_rows:
        game24 = [r["success"] for r in records if r["method"] == row[1] and r["env"] == "game24"]
        low, high = wilson(sum(game24), len(game24))
        assert row[2] == f"{100 * statistics.fmean(game24):.1f} ({100 * low:.0f}–{100 * high:.0f}) n=3"
        shop = [r["score"] for r in records if r["method"] == row[1] and r["env"] == "shop"]
        low, high = bootstrap_mean(shop)
        assert row[3] == f"{100 * statistics.fmean(shop):.1f} ({100 * low:.0f}–{100 * high:.0f}) n=3"


# Run at the end of the page in Chromium: the overview's row heights and where it ends, as JSON in a <pre>.
MEASURE = """<script>
const t = document.getElementById('overview'), out = document.createElement('pre');
out.id = 'layout';
out.textContent = JSON.stringify({rows: [...t.rows].map(r => r.getBoundingClientRect().height),
                                  bottom: t.getBoundingClientRect().bottom + scrollY});
document.body.appendChild(out);
</script></body>"""


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is missing: scripts/test.sh installs it")
def test_chromium_shows_a_short_overview_then_each_stages_section(run_dir, tmp_path) -> None:
    from PIL import Image

    report = build_report(run_dir)
    measured = tmp_path / "measured.html"
    measured.write_text(report.path.read_text().replace("</body>", MEASURE))
    res = _chromium("--window-size=1280,1000", "--dump-dom", measured.resolve().as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    dom = _Collect()
    dom.feed(res.stdout)
    results = {name: read_result(run_dir / name) for name in STAGES}

    # The first screen: one short row per stage (stage, kind, what it made, time, errors), in pipeline order.
    overview = dom.tables["overview"]
    assert overview[0] == ["stage", "kind", "made", "time", "errors"]
    assert [r[:3] + r[4:] for r in overview[1:]] == [
        [name, kind, results[name].headline(), "0"] for name, kind in STAGES.items()]
    assert all(re.fullmatch(r"\d+\.\d s", r[3]) for r in overview[1:])
    assert "episodes" in results["collect"].headline() and "pairs" in results["synth-game24"].headline()
    layout = json.loads(dom.pre["layout"])
    assert len(layout["rows"]) == 1 + len(STAGES)
    assert max(layout["rows"]) < 60, f"an overview row is {max(layout['rows']):.0f} px tall: {layout['rows']}"
    assert layout["bottom"] < 800  # the whole overview is on the first screen

    # evaluate: the results table, as the browser parsed it
    assert [r[1] for r in dom.tables["results"][1:]] == ["Greedy", "ARMAP-B"]
    assert dom.tables["results"][0][2:5] == ["Game24 success %", "Shop reward ×100", "Shop success %"]
    # rollout, synthesis and the reward model: the numbers the stages returned
    roll = results["rollouts"]
    assert _row("game24", "test", "random", 3, roll.success_rate, roll.mean_score, roll.mean_steps, 0) in dom.rows
    syn = results["synth-game24"]
    assert syn.pairs > 0 and syn.per_source
    assert _row("game24", syn.pairs, syn.explored, syn.positives, syn.verification_rate, syn.candidates) in dom.rows
    assert all(_row(source, n) in dom.rows for source, n in syn.per_source.items())
    trm = results["rm"]
    assert _row(trm.n_train, trm.n_heldout, trm.heldout_accuracy, trm.steps, trm.final_loss) in dom.rows
    rm_eval = json.loads((run_dir / "rm-eval" / "rm_eval.json").read_text())
    assert results["rm-eval"].pairs == rm_eval["n"] == trm.n_heldout
    for source, group in rm_eval["per_source"].items():
        assert _row(source, group["n"], group["accuracy"], group["mean_margin"]) in dom.rows
    # self-regulation: the episodes per help rate, the PRM, the helper and every method x budget
    assert all(_row(p.p, p.episodes, p.success_rate, p.mean_interventions, p.mean_steps, p.errors) in dom.rows
               for p in results["collect"].per_p)
    prm = results["prm"]
    assert _row(prm.auroc, prm.brier, prm.ece, prm.eval_examples, prm.held_out_tasks, prm.train_examples) in dom.rows
    helping = results["eval-helper"]
    assert len(helping.rows) == 7 * 3  # seven methods at C = 0, 1, inf
    assert dom.tables["helper-results"][0][2:5] == ["success", "95 % interval", "tasks"]
    assert dom.tables["helper-results"][1:] == [
        _row(r.method, r.budget, r.success_rate, _interval(r.success_interval), 1, r.mean_interventions,
             r.max_interventions, r.episodes)
        for r in helping.rows]
    # one task (limit 1): a success is 1 of 1, [0.207, 1]; a failure 0 of 1, [0, 0.793]
    assert all(r.tasks == 1 and r.success_interval == pytest.approx(wilson(r.success_rate, 1)) for r in helping.rows)
    assert all(_row(r.budget, r.predicted_success, r.success_rate, _interval(r.success_interval), r.tasks,
                    r.predicted_interventions, r.mean_interventions) in dom.rows for r in helping.dp_train)
    dp = json.loads((run_dir / "helper" / "dp.json").read_text())["budgets"]
    assert all(_row(b["budget"], b["predicted_success"], b["mean_usage"]) in dom.rows for b in dp)

    # every plot is an inline PNG that decodes to a real image
    alts = {img["alt"] for img in dom.imgs}
    assert {"methods per env metric", "score vs cost", "reward-model score vs env reward",
            "synthesis pairs per source synth-game24", "RM accuracy per source rm-eval", "RM score histograms rm-eval",
            "PRM reliability prm", "success vs interventions"} <= alts
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


def test_a_stage_folder_of_its_own_is_reported_as_that_stage(tmp_path) -> None:
    from agentcritic.config import RolloutConfig
    from agentcritic.pipeline import run_kind

    run_kind("rollout", RolloutConfig(env="game24", policy="random", limit=2), tmp_path / "r", progress=False)
    result = read_result(tmp_path / "r")
    page = _Collect()
    page.feed(build_report(tmp_path / "r").path.read_text())
    assert [r[:3] for r in page.tables["overview"][1:]] == [[".", "rollout", result.headline()]]
    assert result.episodes == 2 and _row("game24", "test", "random", 2) in [r[:4] for r in page.rows]
    assert page.anchors == ["stage-run"] and "stage-run" in page.ids


def test_nothing_to_report_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ReportError, match="nothing to report"):
        build_report(tmp_path)
    res = subprocess.run([sys.executable, "-m", "agentcritic.cli", "report", str(tmp_path / "missing")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "no such run folder" in res.stderr and "Traceback" not in res.stderr
    # a stage folder whose result.json is not a stage's result: the error names the file, no traceback
    (tmp_path / "result.json").write_text(json.dumps({"kind": "dragon", "errors": 0}))
    res = subprocess.run([sys.executable, "-m", "agentcritic.cli", "report", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"{tmp_path / 'result.json'}: not a stage result (kind 'dragon'" in " ".join(res.stderr.split())


def test_a_finished_stage_without_its_result_is_named_not_guessed(tmp_path) -> None:
    from agentcritic.config import RolloutConfig
    from agentcritic.pipeline import run_kind
    from agentcritic.store import RunStore

    run_kind("rollout", RolloutConfig(env="game24", policy="random", limit=1), tmp_path / "a", progress=False)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "results.jsonl").write_text("")  # what an older version left: no result.json
    with RunStore(tmp_path) as store:
        store.mark_done("a", kind="rollout", seconds=75.0, errors=0)
        store.mark_done("old", kind="evaluate", seconds=1.0, errors=0)
    page = _Collect()
    page.feed(build_report(tmp_path).path.read_text())
    assert [r[:2] + r[3:] for r in page.tables["overview"][1:]] == [["a", "rollout", "1 min 15 s", "0"]]
    text = " ".join(build_report(tmp_path).path.read_text().split())
    assert f"old (evaluate): finished, but {tmp_path / 'old' / 'result.json'} is missing" in text
