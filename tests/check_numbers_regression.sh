#!/usr/bin/env bash
# Shows that `make check-numbers` catches a real regression. In a scratch copy of the repository
# it injects one bug into tvae_lib, re-executes the chapters that train with it, and expects the
# check to fail:
#   collapse  the summed reconstruction error of vae_loss becomes an average per value (the
#             collapsing objective of chapter 7): the chapters' own asserts stop them
#   sigma     reparameterize scales the noise by the variance instead of the standard deviation
#             (a classic slip): the chapters run to the end, and the numbers give it away
# Usage: bash tests/check_numbers_regression.sh [collapse|sigma] [NOTEBOOK ...]  (minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bug=${1:-collapse}
shift || true
case $bug in
  collapse) file=tvae_lib/vae.py
            edit='s/if recon == "mse_mean" else per_sample.mean()/if recon in ("mse_mean", "mse_sum") else per_sample.mean()/' ;;
  sigma)    file=tvae_lib/vae.py
            edit='s/return mu + torch.exp(0.5 \* logvar) \* eps/return mu + torch.exp(logvar) * eps/' ;;
  *) echo "unknown bug '$bug': choose collapse or sigma" >&2; exit 2 ;;
esac
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
git ls-files -z | xargs -0 cp --parents -t "$scratch"
sed -i "$edit" "$scratch/$file"
if cmp -s "$root/$file" "$scratch/$file"; then
  echo "the bug '$bug' was not injected: $file has changed" >&2
  exit 2
fi
echo "injected '$bug':"; diff "$root/$file" "$scratch/$file" || true
cd "$scratch"
notebooks=("$@")
[ ${#notebooks[@]} -gt 0 ] || notebooks=(notebooks/06_vae.ipynb notebooks/08_generation.ipynb)
if PYTHONPATH="$scratch" "$root/.venv/bin/python" tests/check_numbers.py "${notebooks[@]}"; then
  echo "check-numbers did NOT catch the injected bug '$bug'" >&2
  exit 1
fi
echo "as expected, check-numbers failed on the injected bug '$bug'"
