"""agentcritic: learned judgement for LLM agents.

Submodules are imported on use; ``import agentcritic`` stays light (no torch, no JVM).
"""

__version__ = "0.1.0"
