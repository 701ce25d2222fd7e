"""The customer-success workspace (issue 16): a server-rendered web app (FastAPI + Jinja2) for
CSMs, leads and admins over the published scores and the operational store. ``workspace.app``
builds it; ``churnwatch app`` serves it beside ``churnwatch serve``."""
