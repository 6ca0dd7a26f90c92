"""Anchorline back end: chain tooling, (later) the Flask app, models and services."""
