"""Training and inference engines beyond MONAI's own (import the submodules directly)."""
