"""Reading patient messages: sentences, n-gram features and the per-sentence intent model."""
