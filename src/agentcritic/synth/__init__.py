"""Reward-data synthesis (ARMAP §2): explore, refine the intent, make negatives, filter.

```python
from agentcritic.synth import SynthConfig, read_preferences, synthesize
stats = synthesize(SynthConfig(env="game24", tasks=50), "runs/g24-synth")
prefs = read_preferences("runs/g24-synth/preferences.jsonl")
```
"""

from agentcritic.rm.evaluation import read_preferences
from agentcritic.synth.pipeline import synthesize
from agentcritic.synth.synth_config import GAME24_ERRORS, NEGATIVE_SOURCES, SynthConfig

__all__ = ["GAME24_ERRORS", "NEGATIVE_SOURCES", "SynthConfig", "read_preferences", "synthesize"]
