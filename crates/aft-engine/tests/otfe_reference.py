"""An independent implementation of aft's OTFE format (docs/syncjs-library.md,
crates/aft-vfs/src/otfe.rs), written from the documentation with Python's `cryptography`
(ChaCha20-Poly1305) and a hand-written HChaCha20 for the XChaCha20 nonce extension.

Usage: otfe_reference.py encrypt|decrypt KEYSTRING INFILE  (result on stdout)
"""

import base64
import hashlib
import os
import struct
import sys

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

CHUNK = 64 * 1024
TAG = 16


def rotl(v, c):
    return ((v << c) & 0xFFFFFFFF) | (v >> (32 - c))


def quarter(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 7)


def hchacha20(key, nonce16):
    s = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    s += list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))
    for _ in range(10):
        quarter(s, 0, 4, 8, 12); quarter(s, 1, 5, 9, 13); quarter(s, 2, 6, 10, 14); quarter(s, 3, 7, 11, 15)
        quarter(s, 0, 5, 10, 15); quarter(s, 1, 6, 11, 12); quarter(s, 2, 7, 8, 13); quarter(s, 3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def xchacha(key, nonce24):
    return ChaCha20Poly1305(hchacha20(key, nonce24[:16])), b"\0" * 4 + nonce24[16:]


def key_from_string(text):
    if text.startswith("base64:"):
        raw = base64.b64decode(text[len("base64:"):])
        assert len(raw) == 32
        return raw
    return hashlib.sha256(text.encode()).digest()


def nonce(prefix, i, last):
    return prefix + struct.pack(">I", i) + bytes([1 if last else 0])


def encrypt(key, data):
    header = b"AFTE" + bytes([1]) + os.urandom(19)
    out = [header]
    chunks = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]
    for i, chunk in enumerate(chunks):
        aead, n = xchacha(key, nonce(header[5:], i, i == len(chunks) - 1))
        out.append(aead.encrypt(n, chunk, header))
    return b"".join(out)


def decrypt(key, data):
    header, body = data[:24], data[24:]
    assert header[:4] == b"AFTE" and header[4] == 1, "not an OTFE v1 stream"
    out, i = [], 0
    while True:
        chunk, body = body[:CHUNK + TAG], body[CHUNK + TAG:]
        last = len(body) == 0
        aead, n = xchacha(key, nonce(header[5:], i, last))
        out.append(aead.decrypt(n, chunk, header))
        i += 1
        if last:
            return b"".join(out)


if __name__ == "__main__":
    mode, keytext, path = sys.argv[1:4]
    data = open(path, "rb").read()
    key = key_from_string(keytext)
    sys.stdout.buffer.write(encrypt(key, data) if mode == "encrypt" else decrypt(key, data))
