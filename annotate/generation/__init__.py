"""Talking to model endpoints: plain Python, no Django (the generation service and, later,
AI judges build on it)."""
