#!/usr/bin/env bash
# Install the Debian packages the harness needs, only if some are missing.
source "$(dirname "$0")/lib.sh"

pkgs=(build-essential flex bison bc libelf-dev libssl-dev cpio xz-utils kmod
      ccache git python3 qemu-system-x86 busybox-static linux-source-6.12
      sparse rsync)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

step "installing missing packages: ${missing[*]}"
[ "$(id -u)" -eq 0 ] || die "packages missing (${missing[*]}) and not root: install them with apt-get"
export DEBIAN_FRONTEND=noninteractive
run_logged "$LOGS/apt-update.log" apt-get update
run_logged "$LOGS/apt-install.log" apt-get install -y --no-install-recommends "${missing[@]}"
done_step
