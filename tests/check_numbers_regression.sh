#!/usr/bin/env bash
# Shows that `make check-numbers` catches a real regression: in a scratch copy of the repository,
# make the summed reconstruction error of tvae_lib.vae.vae_loss an average per value (the
# collapsing objective of chapter 7), re-execute the chapters that train with it, and expect the
# check to fail. Usage: bash tests/check_numbers_regression.sh [NOTEBOOK ...]  (about 4 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
git ls-files -z | xargs -0 cp --parents -t "$scratch"
sed -i 's/if recon == "mse_mean" else per_sample.mean()/if recon in ("mse_mean", "mse_sum") else per_sample.mean()/' \
  "$scratch/tvae_lib/vae.py"
if cmp -s "$root/tvae_lib/vae.py" "$scratch/tvae_lib/vae.py"; then
  echo "the regression was not injected: tvae_lib/vae.py has changed" >&2
  exit 2
fi
cd "$scratch"
notebooks=("$@")
[ ${#notebooks[@]} -gt 0 ] || notebooks=(notebooks/06_vae.ipynb notebooks/08_generation.ipynb)
if PYTHONPATH="$scratch" "$root/.venv/bin/python" tests/check_numbers.py "${notebooks[@]}"; then
  echo "check-numbers did NOT catch the injected regression" >&2
  exit 1
fi
echo "as expected, check-numbers failed on the injected regression (summed error -> mean per value)"
