"""The report: tables (CSV), figures (PNG + SVG), a self-contained HTML page and summary.json,
from a manifest, the people's responses and the models' predictions."""

from .config import ReportConfig
from .make import make_report, summary

__all__ = ["ReportConfig", "make_report", "summary"]
