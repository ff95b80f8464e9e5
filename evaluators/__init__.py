"""MACs and parameters, latency, FID/KID, mIoU, PSNR/SSIM. Knows nothing of training or search.

The public names below load on first use (``lazy_loader``), so ``import evaluators`` stays cheap:
torch, torchmetrics and the metric networks are imported only by what needs them.
"""
import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "evaluate": ["EvaluationInputError", "EvaluationResult", "EvaluationSettings", "Evaluator", "evaluate",
                 "sample_grid", "static_model"],
    "metrics": ["DatasetTraits", "Metric", "MetricOptions", "MetricUnavailableError", "Need", "UnknownMetricError",
                "register_metric"],
    "metric_catalog": ["check_metrics_available", "get_metric", "list_metrics", "parse_metric_names"],
    "metric_impls.segmentation": ["mean_iou"],
    "macs": ["MacsCount", "count_macs", "format_count", "parse_size"],
    "closed_form": ["closed_form_count", "closed_form_macs", "closed_form_params", "generator_count"],
    "latency": ["LatencyError", "LatencyResult", "list_backends", "measure_latency"],
    "features": ["FeatureExtractor", "load_extractor"],
    "segmenter": ["Segmenter", "SegmenterError", "load_segmenter", "save_segmenter", "train_segmenter"],
})
