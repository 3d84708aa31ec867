"""Reads: one module per concern (labeling queue, dataset rows, quality figures)."""
