#!/usr/bin/env bash
# Generate throw-away TLS material for transport tests into DIR:
#   ca.pem/ca.key            a test CA
#   server.pem/server.key    signed by ca, for localhost and 127.0.0.1
#   client.pem/client.key    signed by ca, for mutual authentication
#   other-ca.pem/.key        an unrelated CA (a client trusting it must be refused)
# EC P-256 keys keep generation fast. Needs the openssl CLI.
# Usage: scripts/make-test-certs.sh DIR
set -euo pipefail
dir=${1:?usage: make-test-certs.sh DIR}
command -v openssl >/dev/null || { echo "make-test-certs: openssl not found" >&2; exit 77; }
mkdir -p "$dir"
cd "$dir"
q() { openssl "$@" 2>/dev/null; }
newkey() { q ecparam -name prime256v1 -genkey -noout -out "$1"; }
mkca() {
  newkey "$1.key"
  q req -x509 -new -key "$1.key" -sha256 -days 2 -subj "/CN=$2" -out "$1.pem"
}
mkleaf() { # name cn ext
  newkey "$1.key"
  q req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
  printf '%s\n' "$3" > "$1.ext"
  q x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -sha256 \
    -extfile "$1.ext" -out "$1.pem"
  rm -f "$1.csr" "$1.ext"
}
mkca ca "evo test CA"
mkca other-ca "unrelated CA"
mkleaf server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1"
mkleaf client "evo test client" "extendedKeyUsage=clientAuth"
chmod 600 ./*.key
