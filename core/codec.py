"""Encryption of everything casedesk hands to Temporal: workflow and activity inputs and
results, update and query payloads, failure messages and stack traces.

Temporal stores payloads as it gets them, and anyone who reaches its UI or API reads them;
cases carry customers' names, emails, addresses and claim descriptions. So the client and
the worker run every payload through `EncryptionCodec` (AES-256-GCM, from `cryptography`):
the serialized payload is encrypted with a fresh 96-bit nonce and the key's id bound in as
associated data, and the new payload names the key in its metadata. Several keys can be
configured: the first encrypts, every one decrypts, so a key is rotated by putting the new
one first and keeping the old one until no open case holds its payloads.

Payloads that are not encrypted (histories recorded before the codec, the SDK's own
markers) pass through decoding unchanged. Search attributes are not payloads: they stay
plain and carry ids, types, statuses and dates only.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class CodecKeyError(ValueError):
    """The configured keys are unusable (bad id, not base64, not 32 bytes, none at all)."""


class PayloadDecryptionError(ValueError):
    """A payload cannot be decrypted: its key is not configured, or it was altered."""


def parse_keys(spec: str) -> tuple[tuple[str, bytes], ...]:
    """`id=base64key,id2=base64key` (the first encrypts) as (id, key) pairs."""
    pairs: list[tuple[str, bytes]] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        key_id, sep, encoded = item.partition("=")
        key_id = key_id.strip()
        if not sep or not KEY_ID_PATTERN.match(key_id):
            raise CodecKeyError(f"a codec key needs an id (letters, digits, . _ -): {key_id!r}")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise CodecKeyError(f"codec key {key_id!r} is not base64") from None
        if len(key) != KEY_BYTES:
            raise CodecKeyError(f"codec key {key_id!r} must be {KEY_BYTES} bytes, not {len(key)}")
        if key_id in dict(pairs):
            raise CodecKeyError(f"codec key {key_id!r} is given twice")
        pairs.append((key_id, key))
    if not pairs:
        raise CodecKeyError("no codec key configured")
    return tuple(pairs)


def format_keys(pairs: Sequence[tuple[str, bytes]]) -> str:
    """The inverse of `parse_keys` (for generated development keys and tests)."""
    return ",".join(f"{key_id}={base64.b64encode(key).decode()}" for key_id, key in pairs)


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def key_id_for(key: bytes, prefix: str) -> str:
    """A stable id for a generated key: its prefix and a short fingerprint."""
    return f"{prefix}-{hashlib.sha256(key).hexdigest()[:8]}"


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise CodecKeyError("no codec key configured")
        self._active_id = keys[0][0]
        self._ciphers: Mapping[str, AESGCM] = {key_id: AESGCM(key) for key_id, key in keys}

    @property
    def active_key_id(self) -> str:
        return self._active_id

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.encode_sync(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.decode_sync(payloads)

    def encode_sync(self, payloads: Iterable[Payload]) -> list[Payload]:
        cipher, key_id = self._ciphers[self._active_id], self._active_id.encode()
        encoded = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), key_id)
            encoded.append(
                Payload(metadata={"encoding": ENCODING, KEY_ID: key_id}, data=nonce + sealed)
            )
        return encoded

    def decode_sync(self, payloads: Iterable[Payload]) -> list[Payload]:
        decoded = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                decoded.append(payload)
                continue
            key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
            cipher = self._ciphers.get(key_id)
            if cipher is None:
                raise PayloadDecryptionError(f"payload encrypted with unknown key {key_id!r}")
            nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
            try:
                plain = cipher.decrypt(nonce, sealed, key_id.encode())
            except InvalidTag:
                raise PayloadDecryptionError(
                    f"payload under key {key_id!r} does not decrypt (altered or truncated)"
                ) from None
            decoded.append(Payload.FromString(plain))
        return decoded


def data_converter(codec: EncryptionCodec) -> DataConverter:
    """Pydantic models as payloads, each encrypted; failure messages and stack traces moved
    into the (encrypted) encoded attributes, so a failed activity's error text, which may
    quote an input, is not plain in history either."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
