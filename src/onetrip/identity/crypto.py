"""Field encryption (AES-256-GCM) and the keyed blind index (HMAC-SHA256) for lookups.

A ciphertext reads ``v1:<key id>:<base64(nonce || ciphertext+tag)>``; the key id says which
key of the keyring opens it, so keys can be rotated without a flag day (``onetrip identity
rekey``). The associated data binds a ciphertext to its purpose (a phone cannot be pasted
into a document column). The blind index is ``HMAC-SHA256(index key, purpose || value)``:
equal values give equal indexes, and without the key the index says nothing about the value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from onetrip.config import get_settings
from onetrip.errors import OnetripError

_PREFIX = "v1"


class KeyConfigurationError(OnetripError):
    code = "key_configuration"
    http_status = 500
    message = "加密密钥配置有误，请联系系统管理员"


class UndecryptableValue(OnetripError):
    code = "undecryptable"
    http_status = 500
    message = "数据无法解密：所用密钥已不在密钥环中"


@dataclass(frozen=True)
class Keyring:
    """Data keys by id (the first one encrypts) and the blind-index key."""

    keys: dict[str, bytes]
    current: str
    index_key: bytes

    def encrypt(self, value: str, *, purpose: str) -> str:
        nonce = os.urandom(12)
        sealed = AESGCM(self.keys[self.current]).encrypt(nonce, value.encode(), purpose.encode())
        return f"{_PREFIX}:{self.current}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, *, purpose: str) -> str:
        try:
            prefix, key_id, payload = token.split(":", 2)
            raw = base64.b64decode(payload)
            key = self.keys[key_id]
        except (ValueError, KeyError, binascii.Error) as exc:
            raise UndecryptableValue() from exc
        if prefix != _PREFIX:
            raise UndecryptableValue()
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], purpose.encode()).decode()
        except InvalidTag as exc:
            raise UndecryptableValue() from exc

    def blind_index(self, value: str, *, purpose: str) -> str:
        message = purpose.encode() + b"\x00" + value.encode()
        return hmac.new(self.index_key, message, hashlib.sha256).hexdigest()


def key_id_of(token: str) -> str:
    return token.split(":", 2)[1]


def _derive(secret: str, label: str) -> bytes:
    return hashlib.sha256(f"onetrip:{label}:{secret}".encode()).digest()


def parse_keys(spec: str) -> dict[str, bytes]:
    """``"2:base64,1:base64"`` → ordered ``{"2": key, "1": key}``; each key is 32 bytes."""
    keys: dict[str, bytes] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key_id, sep, b64 = part.partition(":")
        try:
            key = base64.b64decode(b64, validate=True)
        except binascii.Error as exc:
            raise KeyConfigurationError(detail={"key_id": key_id}) from exc
        if not sep or not key_id or len(key) != 32 or key_id in keys:
            raise KeyConfigurationError(detail={"key_id": key_id})
        keys[key_id] = key
    return keys


@lru_cache(maxsize=8)
def _build(data_keys: str, index_key: str, secret_key: str) -> Keyring:
    keys = parse_keys(data_keys) or {"dev": _derive(secret_key, "data")}
    if index_key:
        try:
            index = base64.b64decode(index_key, validate=True)
        except binascii.Error as exc:
            raise KeyConfigurationError(detail={"key": "index_key"}) from exc
        if len(index) < 32:
            raise KeyConfigurationError(detail={"key": "index_key"})
    else:
        index = _derive(secret_key, "index")
    return Keyring(keys=keys, current=next(iter(keys)), index_key=index)


def keyring() -> Keyring:
    """The keyring of the current settings."""
    s = get_settings()
    return _build(s.data_keys, s.index_key, s.secret_key)


def new_key() -> str:
    """A fresh random 32-byte key, base64-encoded (for ``ONETRIP_DATA_KEYS``)."""
    return base64.b64encode(os.urandom(32)).decode()
