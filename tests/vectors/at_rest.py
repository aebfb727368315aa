#!/usr/bin/env python3
"""Computes tests/vectors/at_rest.json: the bytes idgate keeps at rest, from fixed inputs, WITHOUT
idgate's code, so that a change of stored format fails a test instead of migrating silently.

    python3 tests/vectors/at_rest.py > tests/vectors/at_rest.json

Needs the `cryptography` package (pip install cryptography; written with 48.0.0) for
ChaCha20-Poly1305 (RFC 8439); XChaCha20-Poly1305 is built on it with a HChaCha20 written out below
(draft-irtf-cfrg-xchacha-03 §2.2), both checked first against that draft's published vectors. HMACs
use Python's hmac module, and each HMAC is computed a second time by `openssl dgst -mac HMAC` when
openssl is on the PATH. The formats encoded here are the ones of src/crypto/envelope.rs,
src/crypto/blind_index.rs and src/store/redis/record.rs, written from their docs:

envelope (FORMAT_VERSION 1)
  ad(purpose, kek_id, case, field) = "idgate.v1.envelope" || 0x01 || for each of
                                     (purpose, kek_id or "", case, field): u32be(len) || bytes
  commitment   = HMAC-SHA256(data_key, "idgate.v1.key-commitment")
  body         = 0x01 || commitment || body_nonce(24) || XChaCha20-Poly1305(data_key, body_nonce,
                 plaintext, ad("body", "", case, field))
  wrapped key  = wrap_nonce(24) || XChaCha20-Poly1305(kek, wrap_nonce, data_key,
                 ad("wrap", kek_id, case, field))
  Redis value of a wrapped key = 0x01 || u16be(len kek_id) || kek_id || wrapped key
blind index / keyed tags
  hmac(k, parts)   = HMAC-SHA256(k, for each part: u32be(len) || part)
  derived(use)     = hmac(root, ["idgate.v1.blind-index", label])   labels: rate-limit,
                     anchor-accounts, request-fingerprint, record-mac
  index            = label ":" key_id ":" hex(hmac(derived(use), [normalized]))
  tag              = key_id ":" hex(hmac(derived(use), parts))
Redis case hash (RECORD_VERSION "2")
  mac = tag under record-mac of ["idgate.v1.case", "2", id, account, request, principal, purpose,
        fp, status, refusal or "", status_at]
"""
import hashlib
import hmac
import json
import shutil
import struct
import subprocess
import sys

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

M32 = 0xFFFFFFFF


def rotl(v, c):
    return ((v << c) & M32) | (v >> (32 - c))


def hchacha20(key, nonce16):
    """draft-irtf-cfrg-xchacha-03 §2.2: the ChaCha20 block function without the final addition,
    keeping words 0..3 and 12..15."""
    assert len(key) == 32 and len(nonce16) == 16
    s = list(struct.unpack("<4I", b"expand 32-byte k")) + list(struct.unpack("<8I", key))
    s += list(struct.unpack("<4I", nonce16))

    def qr(a, b, c, d):
        s[a] = (s[a] + s[b]) & M32; s[d] = rotl(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & M32; s[b] = rotl(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & M32; s[d] = rotl(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & M32; s[b] = rotl(s[b] ^ s[c], 7)

    for _ in range(10):
        qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15)
        qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def xchacha20poly1305_seal(key, nonce24, plaintext, aad):
    """draft-irtf-cfrg-xchacha-03 §2.3: ciphertext || tag."""
    assert len(nonce24) == 24
    subkey = hchacha20(key, nonce24[:16])
    return ChaCha20Poly1305(subkey).encrypt(b"\0\0\0\0" + nonce24[16:], plaintext, aad)


def self_check():
    # draft-irtf-cfrg-xchacha-03 §2.2.1 (HChaCha20) and Appendix A.3.1 (AEAD_XChaCha20_Poly1305).
    key = bytes(range(32))
    nonce = bytes.fromhex("000000090000004a0000000031415927")
    assert hchacha20(key, nonce).hex() == (
        "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc"
    ), "HChaCha20 does not match the draft"
    key = bytes(range(0x80, 0xA0))
    nonce = bytes(range(0x40, 0x58))
    aad = bytes.fromhex("50515253c0c1c2c3c4c5c6c7")
    pt = (b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
          b"future, sunscreen would be it.")
    expected = (
        "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39"
        "ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
        "21f9664c97637da9768812f615c68b13b52e" "c0875924c1c7987947deafd8780acf49"
    )
    assert xchacha20poly1305_seal(key, nonce, pt, aad).hex() == expected, "XChaCha20-Poly1305 does not match the draft"


OPENSSL = shutil.which("openssl")
openssl_checks = 0


def hmac_sha256(key, message):
    global openssl_checks
    out = hmac.new(key, message, hashlib.sha256).digest()
    if OPENSSL:
        # A second, independent implementation of every HMAC in this file.
        text = subprocess.run(
            [OPENSSL, "dgst", "-sha256", "-mac", "HMAC", "-macopt", "hexkey:" + key.hex()],
            input=message, capture_output=True, check=True,
        ).stdout.decode()
        assert text.strip().split()[-1] == out.hex(), "openssl disagrees"
        openssl_checks += 1
    return out


def prefixed(parts):
    return b"".join(struct.pack(">I", len(p)) + p for p in parts)


def keyed(key, parts):
    return hmac_sha256(key, prefixed(parts))


# ---- envelope ---------------------------------------------------------------------------------

def envelope_ad(purpose, kek_id, case_id, field):
    return b"idgate.v1.envelope" + b"\x01" + prefixed([purpose.encode(), kek_id.encode(), case_id.encode(), field.encode()])


def envelope(name, kek_id, kek, case_id, field, data_key, wrap_nonce, body_nonce, plaintext):
    body_ad = envelope_ad("body", "", case_id, field)
    wrap_ad = envelope_ad("wrap", kek_id, case_id, field)
    commitment = hmac_sha256(data_key, b"idgate.v1.key-commitment")
    body = b"\x01" + commitment + body_nonce + xchacha20poly1305_seal(data_key, body_nonce, plaintext, body_ad)
    wrapped = wrap_nonce + xchacha20poly1305_seal(kek, wrap_nonce, data_key, wrap_ad)
    redis_wrapped = b"\x01" + struct.pack(">H", len(kek_id.encode())) + kek_id.encode() + wrapped
    return {
        "name": name,
        "kek_id": kek_id,
        "kek": kek.hex(),
        "case_id": case_id,
        "field": field,
        "data_key": data_key.hex(),
        "wrap_nonce": wrap_nonce.hex(),
        "body_nonce": body_nonce.hex(),
        "plaintext": plaintext.hex(),
        "body_ad": body_ad.hex(),
        "wrap_ad": wrap_ad.hex(),
        "commitment": commitment.hex(),
        "wrapped_key": wrapped.hex(),
        "body": body.hex(),
        "redis_wrapped_key": redis_wrapped.hex(),
    }


# ---- blind index and keyed tags ----------------------------------------------------------------

LABELS = ["rate-limit", "anchor-accounts", "request-fingerprint", "record-mac"]


def derived(root):
    return {label: keyed(root, [b"idgate.v1.blind-index", label.encode()]) for label in LABELS}


def main():
    self_check()
    case_id = "vf_abcdefghijklmnopqrstuvwxyz"
    kek = bytes(range(0x00, 0x20))
    envelopes = [
        envelope(
            "identity", "kek-20260101-1", kek, case_id, "identity",
            data_key=bytes(range(0x20, 0x40)),
            wrap_nonce=bytes(range(0x40, 0x58)),
            body_nonce=bytes(range(0x60, 0x78)),
            plaintext="张三|11010519491231002X|+8613800138000".encode(),
        ),
        envelope(
            "face", "kek-20260101-1", kek, case_id, "face",
            data_key=bytes(range(0x80, 0xA0)),
            wrap_nonce=bytes(range(0xA0, 0xB8)),
            body_nonce=bytes(range(0xC0, 0xD8)),
            plaintext=bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9"),
        ),
        envelope(
            "empty plaintext, another KEK id", "kek-env-7", bytes([0x5A] * 32), "vf_x", "identity",
            data_key=bytes([0xA5] * 32),
            wrap_nonce=bytes(24),
            body_nonce=bytes([0xFF] * 24),
            plaintext=b"",
        ),
    ]

    root = bytes(range(0xE0, 0x100))
    key_id = "bk-1"
    keys = derived(root)
    id_number = "11010519491231002X"
    indexes = [
        {"use": label, "normalized": id_number,
         "expected": f"{label}:{key_id}:{keyed(keys[label], [id_number.encode()]).hex()}"}
        for label in ("rate-limit", "anchor-accounts")
    ]
    tag_parts = [b"onboarding", b"anchor", b"", bytes(range(16))]
    tags = [
        {"use": label, "parts": [p.hex() for p in tag_parts],
         "expected": f"{key_id}:{keyed(keys[label], tag_parts).hex()}"}
        for label in ("request-fingerprint", "record-mac")
    ]
    anchor_index = indexes[1]["expected"]
    fingerprint = tags[0]["expected"]

    def case(record):
        signed = [b"idgate.v1.case", b"2"] + [
            record[k].encode() for k in ("id", "account", "request", "principal", "purpose", "fp", "status")
        ] + [record.get("refusal", "").encode(), record["status_at"].encode()]
        mac = f"{key_id}:{keyed(keys['record-mac'], signed).hex()}"
        order = ["v", "id", "account", "request", "principal", "purpose", "status", "created", "updated",
                 "lease", "fp", "status_at", "mac", "provider", "refusal", "pii_exp", "anchor", "erase", "why"]
        full = dict(record, v="2", mac=mac)
        return {"record": record, "mac": mac, "case_hash": [[k, full[k]] for k in order if k in full]}

    records = [
        case({
            "id": case_id, "account": "acct-7", "request": "req-7", "principal": "onboarding-dev",
            "purpose": "anchor", "status": "not_verified", "created": "1796083200", "updated": "1796083260",
            "lease": "1796083230", "fp": fingerprint, "status_at": "1796083260", "provider": "tencent-primary",
            "refusal": "ID_ACCOUNT_LIMIT", "anchor": anchor_index, "erase": "1",
        }),
        case({
            "id": "vf_234567abcdefghijklmnopqr", "account": "acct-8", "request": "req-8",
            "principal": "onboarding", "purpose": "radio", "status": "pending_review", "created": "1796083200",
            "updated": "1796083201", "lease": "1796083230", "fp": fingerprint, "status_at": "1796083201",
            "pii_exp": "1796342460", "why": "SIMILARITY_GREY_ZONE",
        }),
    ]

    out = {
        "about": "Fixed at-rest vectors of idgate; computed by tests/vectors/at_rest.py (see tests/vectors/README.md), "
                 "not by idgate. Hex unless said otherwise.",
        "envelope": envelopes,
        "blind_index": {
            "key_id": key_id,
            "root": root.hex(),
            "derived": {label: k.hex() for label, k in keys.items()},
            "indexes": indexes,
            "tags": tags,
        },
        "redis_record": {"key_id": key_id, "root": root.hex(), "records": records},
    }
    json.dump(out, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    print(f"at_rest.py: self-checks passed; {openssl_checks} HMACs confirmed by {OPENSSL or 'no openssl'}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
