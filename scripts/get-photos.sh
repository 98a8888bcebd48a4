#!/bin/bash
# Natural photos that Debian packages ship (docs/results/README.md, "Natural photos"), gathered into
# data/photos/ (or the folder given) for `{"kind": "photos", "path": "data/photos"}`.
# Needs apt (no root: apt-get download); about 180 MB of packages, ~80 photos.
set -euo pipefail
out=${1:-data/photos}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download python3-skimage python3-sklearn mate-backgrounds lomiri-wallpapers-16.04 opencv-doc >/dev/null)
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/x"; done
mkdir -p "$out"
x="$work/x"
# photos only: skip opencv's calibration patterns, drawings and tiny test images
find "$x/usr/lib/python3/dist-packages/skimage/data" "$x/usr/lib/python3/dist-packages/sklearn/datasets/images" \
  "$x/usr/share/backgrounds/mate/nature" -maxdepth 1 -type f \( -iname '*.jpg' -o -iname '*.png' \) -exec cp {} "$out/" \;
find "$x/usr/share/backgrounds" -maxdepth 1 -type f -iname '*.jpg' -exec cp {} "$out/" \;
find "$x/usr/share/doc/opencv-doc/examples/data" -maxdepth 1 -type f -iname '*.jpg' -size +20k -exec cp {} "$out/" \;
# not photos: calibration boards, drawings, text, palettes, synthetic test images
(cd "$out" && rm -f left[0-9]*.jpg right[0-9]*.jpg chessboard* checker* logo* bw_text* text* foo* *palette* block* color* \
  ellipses* page* phantom* pca_test* truncated* stuff* Blender_Suzanne* ela_* board* microaneurysms* cell* ihc* clock_motion* licenseplate_motion*)
echo "$(ls "$out" | wc -l) photos in $out"
