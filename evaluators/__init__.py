"""MACs and parameters, latency, FID/KID, mIoU, PSNR/SSIM. Knows nothing of training or search."""
