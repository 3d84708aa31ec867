"""Quality control measures as plain functions over plain data (no Django imports here):
agreement, labeler statistics and flags, the source-model leaderboard, the review rule, SVG."""
