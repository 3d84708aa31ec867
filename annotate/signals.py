"""What this app announces to the apps built on it, which it never imports (the reward model
app listens: tests/test_dependencies.py holds that direction)."""

from django.dispatch import Signal

# Sent once an import that added pairs has committed, with `project`: the new pairs exist
# for other processes to read.
pairs_imported = Signal()
