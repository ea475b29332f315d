#!/usr/bin/env bash
# Make a CA and certificates for an evo test cluster (mutual TLS):
#   DIR/ca.pem, ca.key          the cluster CA: the coordinator and nodes trust it
#   DIR/NAME.pem, NAME.key      one certificate per NAME, signed by the CA, valid
#                               as server and client, for the names evo-cluster
#                               (what evo verifies by default; peers are dialed
#                               by IP address), localhost and 127.0.0.1
# With --rogue, also DIR/rogue-ca.pem and DIR/rogue.pem/.key: a certificate from
# an unrelated CA, which a cluster must refuse.
# EC P-256 keys keep it fast. Needs the openssl command.
#
# usage: scripts/make-cluster-certs.sh DIR [--rogue] [NAME...]
#        (default names: coordinator node1 node2 node3 client)
set -euo pipefail
dir=${1:?usage: make-cluster-certs.sh DIR [--rogue] [NAME...]}
shift
rogue=0
if [ "${1:-}" = "--rogue" ]; then rogue=1; shift; fi
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(coordinator node1 node2 node3 client)
command -v openssl >/dev/null || { echo "make-cluster-certs: openssl not found" >&2; exit 77; }
mkdir -p "$dir"
cd "$dir"
q() { openssl "$@" 2>/dev/null; }
newkey() { q ecparam -name prime256v1 -genkey -noout -out "$1"; }
mkca() { # file cn
  newkey "$1.key"
  q req -x509 -new -key "$1.key" -sha256 -days 30 -subj "/CN=$2" -out "$1.pem"
}
mkleaf() { # name ca
  newkey "$1.key"
  q req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr"
  printf '%s\n' "subjectAltName=DNS:evo-cluster,DNS:localhost,IP:127.0.0.1" \
    "extendedKeyUsage=serverAuth,clientAuth" > "$1.ext"
  q x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 30 -sha256 \
    -extfile "$1.ext" -out "$1.pem"
  rm -f "$1.csr" "$1.ext"
}
mkca ca "evo cluster CA"
for n in "${names[@]}"; do mkleaf "$n" ca; done
if [ $rogue = 1 ]; then
  mkca rogue-ca "not the cluster CA"
  mkleaf rogue rogue-ca
fi
chmod 600 ./*.key
echo "make-cluster-certs: CA and ${#names[@]} certificate(s) in $dir"
