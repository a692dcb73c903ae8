#!/usr/bin/env bash
# Make Fashion-MNIST available: the Debian package when we may install it, else fedfleet's downloader.
set -euo pipefail
fedfleet_bin=${1:-fedfleet}
system_dir=/usr/share/datasets/fashion-mnist

if [ -f "$system_dir/train-images-idx3-ubyte.gz" ]; then
    echo "==> Fashion-MNIST found in $system_dir"
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Fashion-MNIST (apt-get install dataset-fashion-mnist)"
    if apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null; then
        exit 0
    fi
    echo "==> apt-get could not install dataset-fashion-mnist; trying the download"
fi
echo "==> downloading Fashion-MNIST into the fedfleet cache"
"$fedfleet_bin" data fetch || echo "==> Fashion-MNIST unavailable: tests that need it will be skipped"
