#!/bin/bash
# Fetch, on this (networked, CPU) machine, the wheels the lent GPU machine lacks, into <repo>/.whl.
# The GPU machine has Python 3.12 with torch, numpy, scipy, matplotlib, scikit-image, tqdm and
# tensorboard, but no MONAI, Ignite, nibabel or fire, and it cannot download. The versions are the ones
# installed here, so both machines run the same code. `.whl/` is kept out of git (git's info/exclude).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
version() { python -c "import importlib.metadata as m; print(m.version('$1'))"; }
mkdir -p .whl
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    "monai==$(version monai)" "pytorch-ignite==$(version pytorch-ignite)" "nibabel==$(version nibabel)" \
    "fire==$(version fire)" "termcolor==$(version termcolor)"
ls -l .whl
