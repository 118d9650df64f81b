"""A run's report: one self-contained HTML page with its config, curves, verdicts, samples and scores."""

from rnnlab.report.build import build_report, check_out, write_report
from rnnlab.report.html import RunReport, render_html

__all__ = ["RunReport", "build_report", "check_out", "render_html", "write_report"]
