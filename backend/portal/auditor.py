"""The auditor's pages (issue 5). See docs/portal.md ("Pages")."""
from __future__ import annotations

from flask import Blueprint

from backend.portal import layout

blp = Blueprint("auditor_pages", __name__)
layout.setup(blp)
