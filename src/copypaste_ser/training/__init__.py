"""Stage 5: configs and presets, run folders, the training loop, speaker pretraining, transfer and DDP."""
