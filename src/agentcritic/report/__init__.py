"""The run report: every table and figure of agentcritic, and one self-contained HTML file per run.

>>> from agentcritic.report.html import build_report
>>> report = build_report("runs/demo")     # writes runs/demo/report.html
>>> print(report.markdown)

- :mod:`~agentcritic.report.html`: ``build_report``, the overview and the dispatch on stage kinds;
- :mod:`~agentcritic.report.armap` and :mod:`~agentcritic.report.selfreg`: one section per stage kind;
- :mod:`~agentcritic.report.tables`: the results table (records → the paper's layout; Markdown, HTML);
- :mod:`~agentcritic.report.plots`: every figure (inline PNGs, and the PNG files commands write);
- :mod:`~agentcritic.report.parts`: a finished stage as the report sees it, small HTML pieces.

This package imports nothing (import the module you need), so no submodule leads back to itself.
"""
