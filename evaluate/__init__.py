"""Scoring a split or a single video, metrics, tables and plots."""
