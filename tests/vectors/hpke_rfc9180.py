#!/usr/bin/env python3
"""Extracts, unchanged, the RFC 9180 test-vector entry of the one HPKE suite idgate uses (mode Base 0,
DHKEM(X25519, HKDF-SHA256) 0x0020, HKDF-SHA256 1, ChaCha20-Poly1305 3) from the official file, e.g.

    python3 tests/vectors/hpke_rfc9180.py test-vectors.json > tests/vectors/hpke_rfc9180_base_x25519_sha256_chacha20poly1305.json

See tests/vectors/README.md for where test-vectors.json comes from and its checksum.
"""
import json
import sys

entries = json.load(open(sys.argv[1]))
ours = [e for e in entries if (e["mode"], e["kem_id"], e["kdf_id"], e["aead_id"]) == (0, 0x20, 1, 3)]
assert len(ours) == 1, len(ours)
entry = ours[0]
# One line per scalar field, per encryption and per export: reviewable, and diffable against the source.
lines = []
for key, value in entry.items():
    if isinstance(value, list):
        items = ",\n".join("    " + json.dumps(item) for item in value)
        lines.append(f"  {json.dumps(key)}: [\n{items}\n  ]")
    else:
        lines.append(f"  {json.dumps(key)}: {json.dumps(value)}")
sys.stdout.write("{\n" + ",\n".join(lines) + "\n}\n")
