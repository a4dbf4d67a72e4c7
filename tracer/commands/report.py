"""gotrace report: summarise a saved session."""
from __future__ import annotations

import json
import sys

from ._common import JsonOpt, SessionArg, TopOpt, handles_errors


@handles_errors
def report_command(session: SessionArg, as_json: JsonOpt = False, top: TopOpt = 10) -> None:
    """Summarise a session: processes, bindings by kind, failures, top symbols and
    providers, latency percentiles, relocation time per image, lost events.

    --json prints the stable format documented in docs/report-json.md.
    """
    from rich.console import Console

    from ..render import render_report
    from .. import lazy
    from ..report import report_session

    lazy.after_import("pyarrow", lazy.pyarrow_without_pandas)  # the report is built without pandas

    report = report_session(session, top)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        render_report(report, Console(highlight=False))
