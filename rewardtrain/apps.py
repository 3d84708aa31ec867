from django.apps import AppConfig


class RewardtrainConfig(AppConfig):
    name = "rewardtrain"
    verbose_name = "Reward model"

    def ready(self) -> None:
        # This app builds on annotate and listens to it; annotate never imports this app.
        from annotate.signals import pairs_imported
        from rewardtrain.services.triggers import on_pairs_imported

        pairs_imported.connect(on_pairs_imported, dispatch_uid="rewardtrain-score-imported")

        from django.db.models.signals import post_delete

        from rewardtrain.models import ModelVersion
        from rewardtrain.services.downloads import on_model_version_deleted

        # Every way a version goes (admin, a project's cascade) takes its download zip with it.
        post_delete.connect(
            on_model_version_deleted, sender=ModelVersion, dispatch_uid="rewardtrain-zip-delete"
        )
