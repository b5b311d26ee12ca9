"""The payload codec: AES-256-GCM per payload, the key named in the metadata, several keys
(the first encrypts, all decrypt), plain payloads passed through, and anything altered or
under an unknown key refused. Failure messages and stack traces are encrypted too."""

from __future__ import annotations

import base64

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError

from core.codec import (
    ENCODING,
    KEY_ID,
    CodecKeyError,
    EncryptionCodec,
    PayloadDecryptionError,
    data_converter,
    format_keys,
    parse_keys,
)
from core.settings import Settings

OLD = ("k-2025", bytes(range(32)))
NEW = ("k-2026", bytes(range(32, 64)))
CANARY = "Casey Canary <casey.canary@example.com>, 7 Secret Row"


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


async def test_a_payload_is_encrypted_under_the_first_key_and_decrypts_to_itself():
    codec = EncryptionCodec([NEW, OLD])

    (sealed,) = await codec.encode([plain(CANARY)])

    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID] == b"k-2026"
    assert CANARY.encode() not in sealed.SerializeToString()
    assert await codec.decode([sealed]) == [plain(CANARY)]


async def test_the_same_payload_encrypts_differently_each_time():
    codec = EncryptionCodec([NEW])

    first, second = await codec.encode([plain(CANARY), plain(CANARY)])

    assert first.data != second.data


async def test_after_a_rotation_the_old_key_still_decrypts_and_the_new_one_encrypts():
    (old_payload,) = await EncryptionCodec([OLD]).encode([plain(CANARY)])
    rotated = EncryptionCodec([NEW, OLD])

    assert await rotated.decode([old_payload]) == [plain(CANARY)]
    (fresh,) = await rotated.encode([plain(CANARY)])
    assert fresh.metadata[KEY_ID] == b"k-2026"


async def test_a_key_that_was_dropped_is_named_in_the_refusal():
    (old_payload,) = await EncryptionCodec([OLD]).encode([plain(CANARY)])

    with pytest.raises(PayloadDecryptionError, match="k-2025"):
        await EncryptionCodec([NEW]).decode([old_payload])


@pytest.mark.parametrize("part", ["data", "key_id"])
async def test_an_altered_payload_is_refused(part):
    codec = EncryptionCodec([NEW, OLD])
    (sealed,) = await codec.encode([plain(CANARY)])
    if part == "data":
        sealed.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    else:  # the key id is bound in as associated data: relabelling it breaks the seal
        sealed.metadata[KEY_ID] = b"k-2025"

    with pytest.raises(PayloadDecryptionError):
        await codec.decode([sealed])


async def test_a_plain_payload_passes_through_decoding():
    assert await EncryptionCodec([NEW]).decode([plain("recorded before the codec")]) == [
        plain("recorded before the codec")
    ]


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "no-equals-sign",
        "bad id!=" + base64.b64encode(bytes(32)).decode(),
        "short=" + base64.b64encode(bytes(16)).decode(),
        "k=not base64",
        format_keys([NEW, NEW]),
    ],
    ids=["empty", "no-key", "bad-id", "short-key", "not-base64", "repeated"],
)
def test_unusable_keys_are_refused(spec):
    with pytest.raises(CodecKeyError):
        parse_keys(spec)


def test_keys_parse_in_order():
    assert parse_keys(format_keys([NEW, OLD])) == (NEW, OLD)


def test_production_refuses_to_start_without_codec_keys(tmp_path):
    with pytest.raises(ValueError, match="CASEDESK_CODEC_KEYS"):
        Settings(
            _env_file=None,
            environment="production",
            data_dir=tmp_path,
            link_secret="x" * 40,
            database_url="postgresql://db/casedesk",
            public_base_url="https://casedesk.example",
        )


def test_development_generates_one_key_and_keeps_it(tmp_path):
    first = Settings(_env_file=None, data_dir=tmp_path).resolved_codec_keys
    again = Settings(_env_file=None, data_dir=tmp_path).resolved_codec_keys

    assert first == again and len(first) == 1
    assert first[0][0].startswith("dev-") and len(first[0][1]) == 32
    assert (tmp_path / "codec-keys").stat().st_mode & 0o777 == 0o600


async def test_a_failures_message_and_stack_trace_are_encrypted():
    converter = data_converter(EncryptionCodec([NEW]))
    failure = Failure()
    try:
        raise ApplicationError(f"no billing contact for {CANARY}", type="RecipientNotFound")
    except ApplicationError as err:
        await converter.encode_failure(err, failure)

    assert CANARY.encode() not in failure.SerializeToString()
    assert failure.message == "Encoded failure"
    error = await converter.decode_failure(failure)
    assert CANARY in str(error)
