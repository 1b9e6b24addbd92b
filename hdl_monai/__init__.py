"""hdl-monai: HDL synthesis of 3-directional myocardial velocity maps, built on MONAI."""

__version__ = "0.1.0"
