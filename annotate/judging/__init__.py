"""AI judges: the rubric a judge reads, the verdict it must end with, and one reading of a pair
in one order. Plain Python, no Django (like annotate/generation, whose client it reuses): the
services in annotate/services/judges.py and judging_run.py store what it returns."""
