"""`churnwatch drift` and `churnwatch performance` (issue 5).

``register(app)`` adds the commands to the main Typer app; shared helpers (``_context``,
``ExitError``, ``console``, ``steps``, ``_tracking``) come from ``churnwatch.cli``.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
