#!/usr/bin/env bash
# Certificates for a mutual-TLS actor-raft cluster (TcpNetwork's `tls` option, actor-raft-kv's
# --tls-key/--tls-cert/--tls-ca): one CA, and per node a key and a certificate whose common name is
# node-<id>, the identity TcpNetwork checks against the id a peer claims in its handshake.
#
#   examples/tls/gen-certs.sh OUT_DIR [IDS] [DAYS]
#   examples/tls/gen-certs.sh ./certs 1,2,3        # ca.pem, ca-key.pem, node-1.pem, node-1-key.pem, ...
#
# Keep ca-key.pem off the nodes: it signs new members. Every node needs ca.pem, its own
# node-<id>.pem and node-<id>-key.pem. Requires openssl 1.1.1 or later.
set -euo pipefail

out=${1:?usage: gen-certs.sh OUT_DIR [IDS=1,2,3] [DAYS=825]}
ids=${2:-1,2,3}
days=${3:-825}
[[ "$ids" =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "IDS must be a comma-separated list of node ids, got '$ids'" >&2; exit 2; }
[[ "$days" =~ ^[0-9]+$ ]] || { echo "DAYS must be a number of days, got '$days'" >&2; exit 2; }

mkdir -p "$out"
cd "$out"
umask 077

if [[ ! -f ca.pem ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout ca-key.pem -out ca.pem -days "$days" -subj "/CN=actor-raft cluster CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  echo "created CA: $out/ca.pem (its key: $out/ca-key.pem)"
fi

ext=$(mktemp)
trap 'rm -f "$ext"' EXIT
# Each certificate serves both ends of a connection: the node accepts (server) and dials (client).
cat > "$ext" <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyAgreement
extendedKeyUsage=serverAuth,clientAuth
EXT

for id in ${ids//,/ }; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "node-$id-key.pem" -out "node-$id.csr" -subj "/CN=node-$id" 2>/dev/null
  openssl x509 -req -in "node-$id.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
    -out "node-$id.pem" -days "$days" -extfile "$ext" 2>/dev/null
  rm -f "node-$id.csr"
  echo "created node $id: $out/node-$id.pem, $out/node-$id-key.pem"
done
rm -f ca.srl
