"""The payload codec on its own: AES-256-GCM, key ids, rotation, key files, claim checks."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload

from tether.engine.codec import (
    CLAIM_CHECK,
    ENCRYPTED,
    KEY_ID,
    ClaimCheckCodec,
    EncryptionCodec,
    FileStore,
    Key,
    Keyring,
    build_codec,
    keyring_from_env,
    new_key,
    worker_codec,
    write_key_file,
)
from tether.errors import ConfigError, DecryptionFailed, PlaintextRefused

SECRET = b'"123-45-6789 has chronic lymphocytic leukemia"'


def _payload(data: bytes = SECRET) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


async def test_encrypts_whole_payload_and_names_the_key() -> None:
    key = new_key()
    codec = EncryptionCodec(Keyring([key]))
    (sealed,) = await codec.encode([_payload()])
    assert sealed.metadata["encoding"] == ENCRYPTED
    assert sealed.metadata[KEY_ID] == key.id.encode()
    assert b"123-45-6789" not in sealed.SerializeToString()
    assert b"json/plain" not in sealed.SerializeToString()  # metadata is sealed too
    (opened,) = await codec.decode([sealed])
    assert opened == _payload()


async def test_same_value_encrypts_differently_each_time() -> None:
    codec = EncryptionCodec(Keyring([new_key()]))
    a, b = await codec.encode([_payload(), _payload()])
    assert a.data != b.data


async def test_rotation_old_payloads_decrypt_new_ones_use_the_new_key() -> None:
    k1, k2 = new_key(), new_key()
    (old,) = await EncryptionCodec(Keyring([k1])).encode([_payload()])
    rotated = EncryptionCodec(Keyring([k2, k1]))
    assert (await rotated.decode([old]))[0] == _payload()
    (new,) = await rotated.encode([_payload()])
    assert new.metadata[KEY_ID] == k2.id.encode()


async def test_unknown_key_id_is_a_clear_error() -> None:
    k1, k2 = new_key(), new_key()
    (sealed,) = await EncryptionCodec(Keyring([k1])).encode([_payload()])
    with pytest.raises(DecryptionFailed) as info:
        await EncryptionCodec(Keyring([k2])).decode([sealed])
    assert info.value.key_id == k1.id
    assert k1.id in str(info.value) and k2.id in str(info.value)
    assert info.value.retryable  # the task is retried, the run is not dropped


async def test_wrong_key_material_under_the_same_id_is_detected() -> None:
    k1 = new_key()
    impostor = Key(k1.id, os.urandom(32))
    (sealed,) = await EncryptionCodec(Keyring([k1])).encode([_payload()])
    with pytest.raises(DecryptionFailed, match="does not decrypt"):
        await EncryptionCodec(Keyring([impostor])).decode([sealed])


async def test_tampered_payload_is_detected() -> None:
    codec = EncryptionCodec(Keyring([new_key()]))
    (sealed,) = await codec.encode([_payload()])
    flipped = bytearray(sealed.data)
    flipped[-1] ^= 1
    sealed.data = bytes(flipped)
    with pytest.raises(DecryptionFailed, match="altered"):
        await codec.decode([sealed])


async def test_plaintext_payloads_are_refused_unless_allowed() -> None:
    with pytest.raises(PlaintextRefused, match="encrypting client"):  # issue 12: keys mean encryption
        await EncryptionCodec(Keyring([new_key()])).decode([_payload()])
    codec = EncryptionCodec(Keyring([new_key()]), require_encryption=False)  # display-only readers
    assert await codec.decode([_payload()]) == [_payload()]


def test_key_file_roundtrip_is_private(tmp_path: Path) -> None:
    k1, k2 = new_key(), new_key()
    path = tmp_path / "keys.json"
    write_key_file(path, [k2, k1])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ring = Keyring.from_file(path)
    assert ring.ids == [k2.id, k1.id]
    assert ring.primary.secret == k2.secret
    assert k1.id in repr(ring.keys) and base64.b64encode(k1.secret).decode() not in repr(ring.keys)


def test_missing_key_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found; create one with `tether keys new"):
        Keyring.from_file(tmp_path / "nope.json")


@pytest.mark.parametrize("content, detail", [
    ("not json", "not JSON"),
    ('{"keys": []}', "expected"),
    ('{"format": "tether-keys", "keys": [{"id": "a"}]}', "entry 0"),
    ('{"format": "tether-keys", "keys": [{"id": "a", "key": "c2hvcnQ="}]}', "not a base64 AES-256 key"),
    ('{"format": "tether-keys", "keys": []}', "holds no key"),
])
def test_corrupt_key_file_is_named(tmp_path: Path, content: str, detail: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        Keyring.from_file(path)
    assert str(path) in str(info.value) and detail in str(info.value)


def test_keys_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    k1, k2 = new_key(), new_key()
    value = ",".join(f"{k.id}:{base64.b64encode(k.secret).decode()}" for k in (k2, k1))
    monkeypatch.setenv("TETHER_KEYS", value)
    ring = keyring_from_env(tmp_path)
    assert ring is not None and ring.ids == [k2.id, k1.id]
    monkeypatch.setenv("TETHER_KEYS", "k-1:abc")
    with pytest.raises(ConfigError, match="TETHER_KEYS: key 'k-1'"):
        keyring_from_env(tmp_path)


def test_key_file_from_environment_and_dev_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TETHER_KEYS", raising=False)
    monkeypatch.delenv("TETHER_KEY_FILE", raising=False)
    assert keyring_from_env(tmp_path) is None
    key = new_key()
    write_key_file(tmp_path / "keys.json", [key])
    assert keyring_from_env(tmp_path).ids == [key.id]  # type: ignore[union-attr]
    monkeypatch.setenv("TETHER_KEY_FILE", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match=r"missing\.json"):
        keyring_from_env(tmp_path)


def test_worker_without_key_refuses_unless_plaintext_allowed(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    monkeypatch.delenv("TETHER_KEYS", raising=False)
    monkeypatch.delenv("TETHER_KEY_FILE", raising=False)
    monkeypatch.setenv("TETHER_STATE_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="--allow-plaintext"):
        worker_codec()
    assert worker_codec(allow_plaintext=True).keyring is None


async def test_claim_check_moves_large_payloads_out_of_band(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    codec = ClaimCheckCodec(store, threshold=1000)
    big, small = _payload(b"x" * 5000), _payload()
    ref, same = await codec.encode([big, small])
    assert ref.metadata["encoding"] == CLAIM_CHECK and ref.ByteSize() < 100
    assert same == small
    assert await codec.decode([ref, same]) == [big, small]
    (file,) = (tmp_path / "store").iterdir()
    file.unlink()
    with pytest.raises(DecryptionFailed, match="not in the payload store"):
        await codec.decode([ref])


async def test_chain_stores_only_ciphertext(tmp_path: Path) -> None:
    codec = build_codec(Keyring([new_key()]), store=FileStore(tmp_path), threshold=100)
    (ref,) = await codec.encode([_payload(SECRET * 10)])
    (file,) = tmp_path.iterdir()
    assert b"123-45-6789" not in file.read_bytes()
    assert (await codec.decode([ref]))[0].data == SECRET * 10
