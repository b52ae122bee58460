#!/usr/bin/env python3
"""Independent known-answer values for the `crypto` crate's tests.

Computed with the Python `cryptography` package (AESGCM, HMAC, HKDF) and hashlib,
not with ring, so a bug in our byte layout cannot agree with itself. Run:

    python3 crates/crypto/tests/kat.py

and compare with the KAT_* constants in src/envelope.rs, src/wrap.rs,
src/blind_index.rs, src/master_key.rs and src/password.rs.
"""

import base64
import hashlib
import struct
import uuid

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def u(text):
    return uuid.UUID(text).bytes


# --- envelope (src/envelope.rs) -------------------------------------------------
# version 0x01 | key id (16) | nonce (12) | ciphertext | tag (16)
# aad = version | key id | u32be(16) | record id | u32be(len(field)) | field
def envelope(key, key_id, record, field, plaintext, nonce):
    header = b"\x01" + key_id
    aad = header + struct.pack(">I", 16) + record + struct.pack(">I", len(field)) + field
    return header + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


ENV_KEY = bytes([0x42] * 32)
ENV_KEY_ID = u("0190a5b0-0000-7000-8000-0000000000aa")
ENV_RECORD = u("0190a5b0-0000-7000-8000-0000000000bb")
FIELD = b"patient.diagnosis"
print("envelope KAT_ENVELOPE =",
      envelope(ENV_KEY, ENV_KEY_ID, ENV_RECORD, FIELD, b"F32.1 major depressive", bytes([0x07] * 12)).hex())
print("envelope KAT_EMPTY_ENVELOPE =",
      envelope(ENV_KEY, ENV_KEY_ID, ENV_RECORD, FIELD, b"", bytes([0x08] * 12)).hex())


# --- key wrapping (src/wrap.rs) ---------------------------------------------------
# material = 0x01 | nonce (12) | wrapped key (32) | tag (16)
# aad = 0x01 | id | owner | u32be(version) | wrapped_by
#   owner = 0x01 | organisation            (organisation key)
#         = 0x02 | organisation | subject  (subject key)
def wrap(kek, key_id, owner, version, wrapped_by, key, nonce):
    aad = b"\x01" + key_id + owner + struct.pack(">I", version) + wrapped_by
    return b"\x01" + nonce + AESGCM(kek).encrypt(nonce, key, aad)


ORG = u("0190a5b0-0000-7000-8000-000000000001")
SUBJ = u("0190a5b0-0000-7000-8000-000000000002")
print("wrap KAT_SUBJECT_WRAP =", wrap(
    bytes([0x11] * 32), u("0190a5b0-0000-7000-8000-000000000003"),
    b"\x02" + ORG + SUBJ, 2, u("0190a5b0-0000-7000-8000-000000000004"),
    bytes([0x22] * 32), bytes([0x33] * 12)).hex())
print("wrap KAT_ORGANISATION_WRAP =", wrap(
    bytes([0x44] * 32), u("0190a5b0-0000-7000-8000-000000000005"),
    b"\x01" + ORG, 1, u("0190a5b0-0000-7000-8000-000000000006"),
    bytes([0x55] * 32), bytes([0x66] * 12)).hex())


# --- blind index (src/blind_index.rs) -----------------------------------------------
# key = HKDF-SHA256(salt="custodia/blind-index/v1", ikm=master, info=name, L=32)
# index = HMAC-SHA256(key, normalised value)
def blind_index(master, name, value):
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"custodia/blind-index/v1",
               info=name).derive(master)
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(value)
    return mac.finalize()


MASTER = bytes([0x44] * 32)
print("blind index KAT_EMAIL =", blind_index(MASTER, b"email", b"alice@example.org").hex())
print("blind index KAT_PHONE =", blind_index(MASTER, b"phone", b"alice@example.org").hex())


# --- master key fingerprint (src/master_key.rs) --------------------------------------
# first 16 bytes of HMAC-SHA256(master, "custodia/master-key-id/v1"), as a UUID
mac = hmac.HMAC(MASTER, hashes.SHA256())
mac.update(b"custodia/master-key-id/v1")
print("master key KAT_FINGERPRINT =", uuid.UUID(bytes=mac.finalize()[:16]))


# --- password PHC string (src/password.rs) ---------------------------------------------
SALT = bytes(range(16))
DK = hashlib.pbkdf2_hmac("sha256", b"correct horse battery staple", SALT, 1000, 32)
b64 = lambda b: base64.b64encode(b).decode().rstrip("=")
print("password KAT_PHC =", f"$pbkdf2-sha256$i=1000${b64(SALT)}${b64(DK)}")

# RFC 7914 section 11 sanity check of the library used here.
assert hashlib.pbkdf2_hmac("sha256", b"passwd", b"salt", 1, 64).hex() == (
    "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
    "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783")
