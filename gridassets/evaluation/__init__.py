"""Evaluation commands: forecast quality on real data and the cost of a daily forecast."""
