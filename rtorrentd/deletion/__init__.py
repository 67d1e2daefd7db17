"""The edge to the disk: reading file facts, safe deletion, the executor."""
