from django.apps import AppConfig


class RewardtrainConfig(AppConfig):
    name = "rewardtrain"
    verbose_name = "Reward model"
