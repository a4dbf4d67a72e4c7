"""gotrace report: summarise a saved session."""
from __future__ import annotations

import json
import sys

from .options import JsonOpt, SessionArg, TopOpt, TranslatorOpt


def report_command(session: SessionArg, as_json: JsonOpt = False, top: TopOpt = 10,
                   include_translator: TranslatorOpt = False) -> None:
    """Summarise a saved session: bindings, failures, latency.

    Processes, bindings by kind, failed lookups, top symbols and providers,
    latency percentiles, relocation time per image and lost events. Examples:

      gotrace report gotrace-sessions/20261204-183317-go
      gotrace report --json --top 3 sess | jq .bindings

    --json prints the stable format documented in docs/report-json.md. In a
    translated run the translator's own bindings are counted apart.
    """
    from rich.console import Console

    from .. import heavy
    from ..analysis.report import report_session
    from ..render.report import render_report

    heavy.after_import("pyarrow", heavy.pyarrow_without_pandas)  # the report is built without pandas

    report = report_session(session, top, include_translator)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        render_report(report, Console(highlight=False))
