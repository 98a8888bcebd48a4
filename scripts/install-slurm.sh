#!/usr/bin/env bash
# Install a single-node Slurm (controller, node daemon, client commands) and munge
# from the Debian/Ubuntu packages, for test/slurm.test.ts. About 3.3 MB, 7 packages,
# ~10 s on a fresh Debian 12 machine.
#
# Nothing is configured or started here: the test writes its own slurm.conf and
# munge key into a temporary folder and starts munged, slurmctld and slurmd itself
# (no systemd needed). On a machine with systemd, apt may start the packaged
# munge service; that is harmless (the test uses its own socket and ports).
#
# Usage: scripts/install-slurm.sh        (as root, or with sudo available)
set -euo pipefail

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-slurm.sh: needs apt-get (Debian or Ubuntu); install slurmctld, slurmd, the Slurm clients and munge another way" >&2
  exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi

"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  slurmctld slurmd slurm-client munge
for p in munged slurmctld slurmd sbatch; do
  command -v "$p" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$p" >/dev/null 2>&1 || {
    echo "install-slurm.sh: $p still missing after the install" >&2
    exit 1
  }
done
echo "install-slurm.sh: $(PATH="$PATH:/usr/sbin" slurmctld -V) and $(PATH="$PATH:/usr/sbin" munged -V 2>&1 | head -n1) installed"
