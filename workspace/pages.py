"""The workspace's pages (routers included by ``workspace.app.build_app``)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
