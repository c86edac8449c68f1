"""Training: data preparation, datasets, losses, loops. Never imported by the live path."""
