#!/usr/bin/env bash
# Fetch the public flow tables that the traffic readers are tested on and benchmarks/traffic_public.py
# measures (see docs/traffic.md, "Public flow tables"), each at a pinned commit of its repository.
# Usage: scripts/get-public-samples.sh [DIR]   (default: $FEDFLEET_SAMPLES or ~/.cache/fedfleet/samples)
set -euo pipefail
dest=${1:-${FEDFLEET_SAMPLES:-$HOME/.cache/fedfleet/samples}}

fetch() {  # fetch OWNER/REPO COMMIT PATH LOCAL
    local url="https://raw.githubusercontent.com/$1/$2/$3" target="$dest/$4"
    if [ -s "$target" ]; then return; fi
    mkdir -p "$(dirname "$target")"
    echo "==> $4  <-  $1@${2:0:12}:$3"
    curl --fail --silent --show-error --location --retry 2 -o "$target.part" "$url"
    mv "$target.part" "$target"
}

sensor=d3721027ab5bd6eafb5ef740bc685e60061c4716  # aucad/sensor-data
for capture in Honeypot-Capture-4-1 Honeypot-Capture-5-1 Honeypot-Capture-7-1 Malware-Capture-20-1 \
               Malware-Capture-21-1 Malware-Capture-34-1 Malware-Capture-42-1 Malware-Capture-44-1 Malware-Capture-8-1; do
    fetch aucad/sensor-data $sensor "iot-23/CTU-$capture-labeled.csv" "iot23/CTU-$capture-labeled.csv"
done
fetch aucad/sensor-data $sensor unsw-nb15/unsw-nb15_1_sampled.csv unsw-nb15/unsw-nb15_1_sampled.csv
fetch taleibhans/Trickbot-Netwrok-Analysis-Playbook 991c9ba033f16f4cfffdaaf837761700fbcebf32 zeek/conn.log \
      zeek/trickbot-conn.log
fetch chad314159/infectedPCAP 8417f7930de49008a0b7ea72e67fbf9e72e36243 conn.log zeek/infected-conn.log
for day in monday friday; do
    fetch PoeenCy/NFStream-CIC-IDS-Pipeline bbd12589f3e1bcadc4fed78a11401b46098b55c1 \
          "output/$day-workinghours_raw_flows.parquet" "nfstream-cic2017/$day-workinghours_raw_flows.parquet"
done
for slice in f1 f2 f3 m1 th1 th2 tu1 w1; do
    fetch r-dube/CICIDS 3f7f5808dee177f34bac7c2a57c664c2789be28b "MachineLearningCVE/test/$slice.csv" \
          "cic-ids2017/$slice.csv"
done
echo "==> public samples in $dest (set FEDFLEET_SAMPLES=$dest if that is not the default)"
