#!/bin/sh
# make_hub_cache.sh CACHE_DIR MODEL_DIR: a Hugging Face hub cache holding MODEL_DIR as the model
# acme/tiny, laid out as the hub lays it out: refs/main names the snapshot c0ffee, whose files
# are symbolic links.
set -eu
cache="$1"
model="$2"
snap="$cache/models--acme--tiny/snapshots/c0ffee"
rm -rf "$cache"
mkdir -p "$snap" "$cache/models--acme--tiny/refs"
for f in config.json model.safetensors tokenizer.json; do
  ln -s "$model/$f" "$snap/$f"
done
echo c0ffee > "$cache/models--acme--tiny/refs/main"
