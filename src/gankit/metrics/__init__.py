"""Evaluation metrics. Today: mode coverage on the 2-D toy distributions (`toy`)."""
