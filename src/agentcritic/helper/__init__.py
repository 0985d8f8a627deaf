"""Self-regulation: learning when to ask for help under a budget (selfreg.md).

``collect_transitions → train PRM → TabularModel → solve_budget(C) → train_helper → Gate``.
Names are imported lazily so ``import agentcritic.helper`` stays cheap.

>>> from agentcritic.helper import CollectConfig, run_collect
>>> run_collect(CollectConfig(env="household", limit=20), "runs/hh-collect")
"""

from __future__ import annotations

from agentcritic.lazy import lazy_exports

_EXPORTS = {
    # interventions and the helped episode loop
    "Intervention": "agentcritic.helper.interventions",
    "ExpertIntervention": "agentcritic.helper.interventions",
    "ModelIntervention": "agentcritic.helper.interventions",
    "SearchIntervention": "agentcritic.helper.interventions",
    "InterventionError": "agentcritic.helper.interventions",
    "PrefixEnv": "agentcritic.helper.interventions",
    "make_intervention": "agentcritic.helper.interventions",
    "HelpedEpisode": "agentcritic.helper.episode",
    "run_helped_episode": "agentcritic.helper.episode",
    "state_key": "agentcritic.helper.episode",
    # configs
    "InterventionConfig": "agentcritic.helper.helper_config",
    "CollectConfig": "agentcritic.helper.helper_config",
    "TrainPRMConfig": "agentcritic.helper.helper_config",
    "EvalHelperConfig": "agentcritic.helper.helper_config",
    # stages
    "run_collect": "agentcritic.helper.collect",
    "run_train_prm": "agentcritic.helper.prm",
    "run_eval_helper": "agentcritic.helper.evaluate_helper",
    # the tabular model, the DP, the helper and the gate
    "TabularModel": "agentcritic.helper.tabular",
    "solve_budget": "agentcritic.helper.dp",
    "solve_lagrangian": "agentcritic.helper.dp",
    "search_lambda": "agentcritic.helper.dp",
    "Gate": "agentcritic.helper.gate",
    "DecisionState": "agentcritic.helper.gate",
    "load_helper": "agentcritic.helper.helper_model",
    "train_helper": "agentcritic.helper.helper_trainer",
    "HelperTrainer": "agentcritic.helper.helper_trainer",
    "HelperConfig": "agentcritic.helper.helper_config",
    # collected episodes and the PRM as the table's scorer
    "read_episodes": "agentcritic.helper.episode_files",
    "EpisodeDataError": "agentcritic.helper.episode_files",
    "load_prm": "agentcritic.helper.prm_scores",
    "prm_scorer": "agentcritic.helper.prm_scores",
    "MemoScorer": "agentcritic.helper.prm_scores",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
