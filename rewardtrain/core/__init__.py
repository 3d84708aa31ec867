"""The reward model's plain PyTorch core: config, data, model, training loop, launcher,
evaluation and scoring. It never imports Django or the apps, so it runs anywhere: a Celery
worker, a GPU box, a notebook."""
