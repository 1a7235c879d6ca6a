# Sourced by the GPU scripts: the libraries the GPU machine lacks (toml++, PCRE2, utf8proc),
# unpacked once from the Debian .debs in .gpu-deps/ into build/extra-root, exported as
# SEMSKIP_EXTRA_ROOT (what scripts/gpu/build-cuda.sh takes) and put on LD_LIBRARY_PATH.
# A SEMSKIP_EXTRA_ROOT set by the caller is kept; without the .debs nothing is set.
semskip_extra_root() {
  if [ -z "${SEMSKIP_EXTRA_ROOT:-}" ] && ls .gpu-deps/libtomlplusplus-dev_*.deb >/dev/null 2>&1; then
    export SEMSKIP_EXTRA_ROOT="$(pwd)/build/extra-root"
    if [ ! -d "$SEMSKIP_EXTRA_ROOT/usr" ]; then
      mkdir -p "$SEMSKIP_EXTRA_ROOT"
      for d in .gpu-deps/libtomlplusplus*.deb .gpu-deps/libpcre2*.deb .gpu-deps/libutf8proc*.deb; do
        [ -f "$d" ] && dpkg -x "$d" "$SEMSKIP_EXTRA_ROOT"
      done
    fi
  fi
  if [ -n "${SEMSKIP_EXTRA_ROOT:-}" ]; then
    export LD_LIBRARY_PATH="$SEMSKIP_EXTRA_ROOT/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
}
