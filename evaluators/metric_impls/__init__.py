"""The built-in metrics, one small class each; importing this package registers them.

``fid``, ``kid`` (features of generated vs real images), ``miou`` (a segmenter on generated
images vs label maps), ``psnr``, ``ssim`` (generated vs paired ground truth), ``latency``
(the static model's measured batch-1 time), ``teacher-psnr``, ``teacher-ssim``, ``teacher-perceptual``
(generated vs the teacher's outputs). The import order is the registry's order.
"""
from . import frechet_metrics, segmentation, paired, latency_metric, teacher_fidelity  # noqa: F401,I001
