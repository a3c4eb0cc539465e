"""An offline HTML report of a corpus: captions, translations, scores and failures, in a browser."""

from ccr.report.build import ReportSummary, build_report

__all__ = ["ReportSummary", "build_report"]
