"""Stage three: score a split of the feature file, or one new video, with a trained run:
frame scores, metrics, tables and plots."""
from .stage import ScoreResult, score_split, score_video

__all__ = ["ScoreResult", "score_split", "score_video"]
