"""Developer tools: evaluation, load benchmark and the answers report."""
