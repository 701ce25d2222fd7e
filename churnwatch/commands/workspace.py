"""`churnwatch app` and `churnwatch users password`: the customer-success workspace.

``app`` serves the workspace (``workspace.app``) with uvicorn on 127.0.0.1 (default port 3001),
beside ``churnwatch serve`` (the scoring API, port 3000): both read the same home. ``users
password NAME`` sets a user's sign-in password (asked twice, or read from the environment
variable ``--password-env`` names), hashed with argon2.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from churnwatch.commands.workflow import AsOpt, operations, storage_named, users_app
from churnwatch.options import ConfigOpt, ExitError, HomeOpt, console, context

DEFAULT_PORT = 3001


def app(home: HomeOpt = None, config: ConfigOpt = None,
        host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=1, max=65535, help="port (churnwatch serve uses 3000)")]
        = DEFAULT_PORT) -> None:
    """Serve the customer-success workspace (sign in with `churnwatch users password`)."""
    import uvicorn

    from workspace.app import build_app

    h, settings = context(home, config)
    web = build_app(h.root, settings, file_settings=lambda: context(home, config, saved=False)[1])
    console.print(f"workspace on http://{host}:{port} (home {h.root})", markup=False, highlight=False)
    uvicorn.run(web, host=host, port=port, log_level="warning", proxy_headers=True, forwarded_allow_ips="127.0.0.1")


@storage_named
def users_password(name: Annotated[str, typer.Argument(help="the user: id, e-mail, CRM name or name")],
                   password_env: Annotated[str | None, typer.Option(
                       "--password-env", help="read the password from this environment variable")] = None,
                   actor: AsOpt = "admin", home: HomeOpt = None, config: ConfigOpt = None) -> None:
    """Set a user's workspace password (argon2-hashed)."""
    from workspace.auth import AuthError, set_password

    if password_env:
        password = os.environ.get(password_env)
        if password is None:
            raise ExitError(f"--password-env {password_env}: that environment variable is not set")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    engine, _ = operations(home, config)
    try:
        user = set_password(engine, name, password, actor)
    except AuthError as exc:
        raise ExitError(str(exc)) from None
    console.print(f"password set for user {user['id']}: {user['name']} ({user['role']})", markup=False,
                  highlight=False)


def register(root: typer.Typer) -> None:
    """Add this module's commands to ``root`` (and ``password`` to ``users``)."""
    root.command("app")(app)
    users_app.command("password")(users_password)
