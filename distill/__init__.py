"""Losses, discriminators, teacher training, GAN Compression and OMGD distillation. Knows nothing of search or storage."""
