"""``python -m hdl_monai COMMAND ...``: the ``hdl-monai`` command without the console script (e.g. on a
machine where the package is on PYTHONPATH rather than installed)."""

from hdl_monai.cli import main

if __name__ == "__main__":
    main()
