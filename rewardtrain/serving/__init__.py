"""The reward server (`manage.py serve_rewards`): the project's active model scoring
(prompt, response) items for RL trainers over HTTP, with requests batched together.

inputs (request bodies), batcher (shared batches across requests), active (the active
version, followed and swapped), auth (API tokens), app (the ASGI app), server (wiring).
"""
