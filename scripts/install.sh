#!/usr/bin/env bash
# Builds pm and pm-server once (release) and installs them with their shell completions and
# man pages:
#
#   scripts/install.sh                    # into ~/.local (bin/, share/man/man1/, share/*completion*)
#   scripts/install.sh --prefix /usr/local  # system-wide (run as root)
#
# Needs Rust (stable, https://rustup.rs); the build takes a few minutes on a laptop.
# PM_INSTALL_PROFILE=dev installs the debug build instead (CI checks the script with it).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
}

PREFIX=${HOME:?}/.local
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) PREFIX=${1#--prefix=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
case $PREFIX in /*) ;; *) PREFIX=$PWD/$PREFIX ;; esac

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found: install Rust from https://rustup.rs, then run this again" >&2
  exit 1
fi

PROFILE=${PM_INSTALL_PROFILE:-release}
case $PROFILE in
  release) BUILT=release; FLAGS=(--release) ;;
  dev) BUILT=debug; FLAGS=() ;;
  *) echo "error: PM_INSTALL_PROFILE is release or dev, not $PROFILE" >&2; exit 2 ;;
esac
TARGET=${CARGO_TARGET_DIR:-target}

echo "== cargo build ${FLAGS[*]} -p pm -p pm-server"
cargo build --locked "${FLAGS[@]}" -p pm -p pm-server

BIN=$PREFIX/bin
MAN=$PREFIX/share/man/man1
BASH_DIR=$PREFIX/share/bash-completion/completions
ZSH_DIR=$PREFIX/share/zsh/site-functions
FISH_DIR=$PREFIX/share/fish/vendor_completions.d
mkdir -p "$BIN" "$MAN" "$BASH_DIR" "$ZSH_DIR" "$FISH_DIR"

for binary in pm pm-server; do
  install -m 0755 "$TARGET/$BUILT/$binary" "$BIN/$binary"
  "$BIN/$binary" completions bash >"$BASH_DIR/$binary"
  "$BIN/$binary" completions zsh >"$ZSH_DIR/_$binary"
  "$BIN/$binary" completions fish >"$FISH_DIR/$binary.fish"
  "$BIN/$binary" man --dir "$MAN"
done

echo "installed into $PREFIX:"
echo "  $BIN/pm, $BIN/pm-server ($("$BIN/pm" --version), $("$BIN/pm-server" --version))"
echo "  $(ls "$MAN" | grep -c '^pm') man pages in $MAN (man pm, man pm-server, man pm-work-item-update, ...)"
echo "  completions for bash, zsh and fish under $PREFIX/share"
case ":$PATH:" in
  *":$BIN:"*) ;;
  *) echo "note: $BIN is not on your PATH; add it, e.g.: echo 'export PATH=\"$BIN:\$PATH\"' >> ~/.bashrc" ;;
esac
if [ "$PREFIX" = "$HOME/.local" ] && command -v zsh >/dev/null 2>&1; then
  echo "note: zsh reads completions from fpath; add $ZSH_DIR to it (fpath+=($ZSH_DIR) in ~/.zshrc)"
fi
