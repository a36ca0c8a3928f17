#!/bin/bash
# Prepare, on the development machine (run from the repository root), what run_on_device.sh
# needs on the device machine, which has no network: wheels of the packages its image lacks
# and the IDX files. Then call the device tool with carry [".device", ".whl"] and the command
# `bash docs/results/mnist-comparison/run_on_device.sh`. The committed cells (this folder's
# cache/, ~75 MB) do not fit the tool's 64 MiB working-tree limit beside the data: move cache/
# out of the checkout for the call and back afterwards, and never commit in between.
# Results over 16 MiB come back only split (split -b 15M), at most 64 MiB per call.
set -euo pipefail
: "${NONVON_DATA:?set NONVON_DATA to the folder holding mnist/}"
PY=${PYTHON:-.venv/bin/python}
mkdir -p .whl .device/data/mnist .device/data/fashion-mnist
for p in qiskit==2.6.2 rustworkx==0.18.1 stevedore==5.10.0 dill==0.4.1 snntorch==1.0.0 torch-hd==5.8.4 nirtorch==2.6 aihwkit-lightning==2.1.0; do
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "$p"
done
cp "$NONVON_DATA"/mnist/*.gz .device/data/mnist/
cp /usr/share/datasets/fashion-mnist/*.gz .device/data/fashion-mnist/
du -sh .whl .device
