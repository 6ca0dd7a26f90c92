"""Journeys through the portal in a real browser (Debian's Chromium driven by Playwright),
against the whole stack `anchorline up` starts: see tests/browser/conftest.py."""
