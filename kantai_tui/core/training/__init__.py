"""Training: config, presets, data, masking, the step, the loop, checkpoints, distributed."""
