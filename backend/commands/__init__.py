"""Click command groups of the `anchorline` console script, one module per area."""
