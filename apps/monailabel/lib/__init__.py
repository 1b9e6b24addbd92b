"""Infer tasks of the hdl-monai MONAI Label sample app."""
