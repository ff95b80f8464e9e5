"""Losses of both distillation methods: GAN losses, SSIM, VGG16 style/perceptual, TV,
GAN Compression's feature distillation and OMGD's channel distillation and student objective."""
from .channel_distill import ChannelDistiller, channel_attention
from .errors import FeatureMismatchError, LossConfigError
from .feature_distill import FeatureDistiller
from .features import DistillLayer, FeatureTap, LayerwiseDistiller, probe_layers, run_with_features
from .gan import GANLoss, get_gan_mode, list_gan_modes, register_gan_mode
from .omgd import PERCEPTUAL_NETWORKS, LossBreakdown, OMGDStudentCriterion, OMGDStudentLoss
from .perceptual import feature_l1, gram_matrix, style_loss
from .ssim import SSIMLoss, gaussian_window, ssim, ssim_map
from .tv import total_variation
from evaluators.vgg import VGG16_ENV_VAR, VGG16_FILENAME, VGG16FeatureExtractor, VGGFeatures

__all__ = [
    "PERCEPTUAL_NETWORKS", "VGG16_ENV_VAR", "VGG16_FILENAME", "ChannelDistiller", "DistillLayer",
    "FeatureDistiller", "FeatureMismatchError", "FeatureTap", "GANLoss", "LayerwiseDistiller", "LossBreakdown",
    "LossConfigError", "OMGDStudentCriterion", "OMGDStudentLoss", "SSIMLoss", "VGG16FeatureExtractor",
    "VGGFeatures", "channel_attention", "feature_l1", "gaussian_window", "get_gan_mode", "gram_matrix",
    "list_gan_modes", "probe_layers", "register_gan_mode", "run_with_features", "ssim", "ssim_map", "style_loss",
    "total_variation",
]
