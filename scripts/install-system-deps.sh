#!/usr/bin/env bash
# System packages for the local stack and the HTML report: Redis, a JDK + Maven (Kafka and
# Elasticsearch run from Maven Central jars), and Chromium. Safe to re-run: when everything is
# already installed it only checks dpkg and exits, without touching the network.
set -euo pipefail

PACKAGES=(
  redis-server      # registry state + data nodes
  redis-tools       # redis-cli, for poking at a running stack
  default-jdk-headless  # java + javac for the Kafka broker (Elasticsearch needs 21+, see below)
  maven             # fetches the Kafka / Elasticsearch jars
  chromium          # renders the HTML run report
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

# A JDK that was installed some other way (e.g. openjdk-17-jdk-headless) is good enough.
if [[ " ${missing[*]} " == *" default-jdk-headless "* ]] && command -v javac >/dev/null \
    && javac -version 2>&1 | grep -Eq 'javac (1[7-9]|[2-9][0-9])'; then
  missing=("${missing[@]/default-jdk-headless}")
fi
# Drop the empty slots the substitution above leaves behind.
read -r -a missing <<< "${missing[*]:-}"

# Elasticsearch 9 needs a JDK 21+, which Debian 12 does not package: the machines carry a Temurin
# JDK under /usr/lib/jvm (e.g. temurin-25-jdk-amd64) beside the packaged 17. Say so early; the
# stack names the JDKs it found (and MDDE_STACK_JAVA_HOME) when it cannot start the node.
check_jdk21() {
  local home version
  for home in "${JAVA_HOME:-}" /usr/lib/jvm/*; do
    [[ -n "$home" && -x "$home/bin/javac" && -f "$home/release" ]] || continue
    version=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$home/release")
    if [[ -n "$version" && "$version" -ge 21 ]]; then
      echo "install-system-deps: JDK $version for Elasticsearch at $home"
      return 0
    fi
  done
  echo "install-system-deps: WARNING no JDK 21+ under /usr/lib/jvm; Elasticsearch 9 will not start." >&2
  echo "  Unpack a JDK 21+ (e.g. Temurin 25) under /usr/lib/jvm or set MDDE_STACK_JAVA_HOME." >&2
}

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-system-deps: all present (${PACKAGES[*]})"
  check_jdk21
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  SUDO="sudo"
fi

echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends "${missing[@]}"

# Debian starts a system-wide redis-server on 6379 where an init system exists; the local stack
# runs its own servers on that port, so keep the packaged service stopped and disabled.
if command -v systemctl >/dev/null && systemctl is-active --quiet redis-server 2>/dev/null; then
  $SUDO systemctl disable --now redis-server || true
fi
check_jdk21
echo "install-system-deps: done"
