"""Matrix protocol core (placeholder docstring, expanded below)."""
