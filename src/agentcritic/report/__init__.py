"""The run report: the results table (Markdown, HTML), plots, and one self-contained HTML file.

>>> from agentcritic.report import build_report
>>> report = build_report("runs/demo")     # writes runs/demo/report.html
>>> print(report.markdown)
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_report", "Report", "ReportError"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from agentcritic.report import html

        return getattr(html, name)
    raise AttributeError(f"module 'agentcritic.report' has no attribute {name!r}")
