"""Patient safety: the deterministic guard and its lexicons."""
