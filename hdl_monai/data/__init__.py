"""Case format I/O, datalists, the digital-twin phantom and DICOM import."""

from hdl_monai.data.atomic import OverwriteError, atomic_directory, atomic_write_json, atomic_write_text
from hdl_monai.data.case import (
    DEFAULT_LABELS,
    DIRECTIONS,
    PHASE_MAX,
    PHASE_MIN,
    PHASE_ZERO,
    Case,
    CaseError,
    check_case,
    load_case,
    save_case,
    validate_case_dir,
)
from hdl_monai.data.datalist import SPLITS, case_dirs, load_datalist, save_datalist, split_by_subject, validate_dataset
