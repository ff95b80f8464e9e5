"""Losses, discriminators, teacher training, GAN Compression and OMGD distillation. Knows nothing of search or storage.

The public names below load on first use (``lazy_loader``), so ``import distill`` stays cheap. The
losses have their own surface, :mod:`distill.losses`.
"""
import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "jobs": ["DataSpec", "TeacherSource", "finetune", "train_gan_compression", "train_omgd", "train_teacher"],
    "loop": ["LoopSettings", "Recipe", "TrainingError", "run_training"],
    "teacher": ["TeacherSettings"],
    "gan_compression": ["GANCompressionRecipe", "GANCompressionSettings"],
    "omgd": ["OMGDRecipe", "OMGDSettings"],
    "omgd_unpaired": ["UnpairedOMGDRecipe", "UnpairedOMGDSettings"],
})
