"""The ``churnwatch`` command line: a thin shell over the packages (DESIGN §8).

One command module per stage in ``churnwatch/commands`` on the shared options of
``churnwatch.options``; this module builds the Typer app from them and is the console entry point.

Exit codes: 0 done; 2 bad input or usage (one or two lines naming what is wrong);
3 a monitored alarm.
"""

from __future__ import annotations

import logging
import sys

import typer

from churnwatch.commands import data, demo, diagnosis, features, insights, monitoring, serving, training
from churnwatch.options import ExitError, err
from core.errors import ChurnwatchError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="churnwatch: early warning for customer churn.")

# the order of ``churnwatch --help``: the flow, then the people's views
for module in (data, features, training, serving, demo, monitoring, insights, diagnosis):
    module.register(app)


def main() -> None:
    """Entry point: our errors become a short message and exit 2; usage errors exit 2 (click)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app(standalone_mode=True)
    except ExitError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.code)
    except ChurnwatchError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
