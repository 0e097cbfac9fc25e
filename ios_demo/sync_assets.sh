#!/usr/bin/env bash
# Copies what the demo app bundles from a `mobile-sdk export` folder into
# Sources/MobileSDKDemo/Resources (git-ignored): manifest.json, the tokenizer's file (vocab.txt, or
# the CLIP BPE merges bpe_simple_vocab_16e6.txt.gz), the label bank (label_bank.json, when the
# export has one: `mobile-sdk export --label-bank CLASSES.txt`), the Core ML
# packages the manifest lists (Xcode compiles them to .mlmodelc at build time) and a gallery for
# text-to-image search (the export's golden/*.png, else the repository's tests/golden/golden/*.png).
#
#   .venv/bin/mobile-sdk export --out artifacts/demo      # on the Linux / macOS dev machine
#   ios_demo/sync_assets.sh artifacts/demo                # then build the app in Xcode
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
src=${1:?usage: sync_assets.sh EXPORT_DIR   (EXPORT_DIR from: mobile-sdk export --out EXPORT_DIR)}
dest="$here/Sources/MobileSDKDemo/Resources"

if [ ! -f "$src/manifest.json" ]; then
    echo "error: $src/manifest.json not found; run: .venv/bin/mobile-sdk export --out $src" >&2
    exit 1
fi

# What to copy, from the manifest (nothing is guessed from file names).
files=$(python3 - "$src/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
tok = m["model"]["tokenizer"]
kind = tok.get("kind", "word")
files = {"word": "vocab_file", "clip_bpe": "merges_file"}
if kind not in files:
    sys.exit(f"error: the model's tokenizer kind {kind!r} is not supported by the app (it implements word, clip_bpe)")
print(tok[files[kind]])
if m.get("label_bank"):
    print(m["label_bank"]["file"])
for a in m["artifacts"]:
    if a["platform"] == "coreml":
        print(a["file"])
PY
)

find "$dest" -mindepth 1 ! -name README.md -exec rm -rf {} +
cp "$src/manifest.json" "$dest/"
missing=0
while IFS= read -r f; do
    [ -n "$f" ] || continue
    if [ ! -e "$src/$f" ]; then
        echo "error: $src/$f (listed in the manifest) is missing" >&2
        missing=1
        continue
    fi
    mkdir -p "$dest/$(dirname "$f")"
    cp -R "$src/$f" "$dest/$f"
done <<< "$files"
[ "$missing" = 0 ] || exit 1

mkdir -p "$dest/gallery"
if compgen -G "$src/golden/*.png" > /dev/null; then
    cp "$src"/golden/*.png "$dest/gallery/"
else
    cp "$repo"/tests/golden/golden/*.png "$dest/gallery/"
fi
echo "copied into $dest:"
(cd "$dest" && find . -maxdepth 2 ! -name . | sort)
