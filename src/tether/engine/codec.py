"""Payload encryption and claim checks: what the Temporal server stores is ciphertext.

Runs in every process that holds the payload key: workers (brain and zones), the CLI and
Studio. Each payload is encrypted with AES-256-GCM under the primary key; its key id
travels in the payload metadata, so payloads written under older keys still decrypt
after a rotation. Payloads above a size threshold are stored out of band (a claim
check) and only a reference reaches the server.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import os
import re
import secrets
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from tether import settings
from tether.errors import ConfigError, DecryptionFailed, PlaintextRefused

ENCRYPTED = b"binary/encrypted"
CLAIM_CHECK = b"binary/claim-check"
KEY_ID = "encryption-key-id"
KEY_FILE_NAME = "keys.json"
DEFAULT_THRESHOLD = 1024 * 1024
_NONCE = 12
_FORMAT = "tether-keys"


@dataclass(frozen=True)
class Key:
    """One AES-256 key and the id that names it in payload metadata."""

    id: str
    secret: bytes

    def __repr__(self) -> str:  # never print key material
        return f"Key(id={self.id!r})"


def new_key() -> Key:
    """A fresh random AES-256 key with a random id like `k-3f9a01bc`."""
    return Key(id=f"k-{secrets.token_hex(4)}", secret=AESGCM.generate_key(bit_length=256))


class Keyring:
    """The keys of one process: the first encrypts, all of them decrypt.

    Args:
        keys: At least one key; ids must be unique.
        source: Where the keys came from (a path or an environment variable), for errors.
    """

    def __init__(self, keys: Sequence[Key], *, source: str = "the configured keys") -> None:
        if not keys:
            raise ConfigError(f"{source} holds no key; create one with `tether keys new`")
        ids = [k.id for k in keys]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"{source} names a key id twice ({', '.join(ids)}); key ids must be unique")
        self.keys = list(keys)
        self.source = source
        self._ciphers = {k.id: AESGCM(k.secret) for k in keys}

    @property
    def primary(self) -> Key:
        """The key new payloads are encrypted with."""
        return self.keys[0]

    @property
    def ids(self) -> list[str]:
        """Key ids, primary first."""
        return [k.id for k in self.keys]

    def cipher(self, key_id: str) -> AESGCM | None:
        """The cipher for `key_id`, or None when this keyring does not have that key."""
        return self._ciphers.get(key_id)

    @classmethod
    def from_file(cls, path: str | Path) -> Keyring:
        """Read a key file written by `tether keys new`.

        Raises:
            ConfigError: The file is missing, unreadable or not a valid key file.
        """
        p = Path(path)
        try:
            text = p.read_text()
        except FileNotFoundError:
            raise ConfigError(f"key file {str(p)!r} not found; create one with "
                              f"`tether keys new {p}` or set TETHER_KEY_FILE to an existing one") from None
        except OSError as exc:
            raise ConfigError(f"cannot read key file {str(p)!r}: {exc.strerror}") from None
        return cls(_parse_key_file(text, str(p)), source=f"key file {str(p)!r}")

    @classmethod
    def from_env_value(cls, value: str) -> Keyring:
        """Parse `TETHER_KEYS`: `id:base64key[,id:base64key…]`, primary first.

        Raises:
            ConfigError: An entry is not `id:base64key` or a key is not 32 bytes.
        """
        keys = []
        for entry in (e.strip() for e in value.split(",")):
            kid, sep, b64 = entry.partition(":")
            if not entry or not sep or not kid:
                raise ConfigError("TETHER_KEYS must be `id:base64key[,id:base64key…]`; "
                                  f"got an entry {entry[:12] + '…' if len(entry) > 12 else entry!r}")
            try:
                keys.append(Key(kid, _decode_secret(b64, kid)))
            except ValueError as exc:
                raise ConfigError(f"TETHER_KEYS: {exc}") from None
        return cls(keys, source="TETHER_KEYS")


def _parse_key_file(text: str, where: str) -> list[Key]:
    def bad(detail: str) -> ConfigError:
        return ConfigError(f"key file {where!r} is corrupt ({detail}); restore it from your backup "
                           "or create a new one with `tether keys new`")

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise bad(f"not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict) or data.get("format") != _FORMAT or not isinstance(data.get("keys"), list):
        raise bad("expected {\"format\": \"tether-keys\", \"keys\": [...]}")
    keys = []
    for i, entry in enumerate(data["keys"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not isinstance(entry.get("key"), str):
            raise bad(f"entry {i} needs string fields 'id' and 'key'")
        try:
            keys.append(Key(entry["id"], _decode_secret(entry["key"], entry["id"])))
        except ValueError as exc:
            raise bad(str(exc)) from None
    return keys


def _decode_secret(b64: str, kid: str) -> bytes:
    try:
        secret = base64.b64decode(b64.strip(), validate=True)
    except (binascii.Error, ValueError):
        secret = b""
    if len(secret) != 32:
        raise ValueError(f"key {kid!r} is not a base64 AES-256 key (32 bytes)")
    return secret


def write_key_file(path: str | Path, keys: Sequence[Key]) -> None:
    """Write `keys` (primary first) to `path`, readable by its owner only (mode 0600)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    data = {"format": _FORMAT, "keys": [
        {"id": k.id, "key": base64.b64encode(k.secret).decode(), "added": now} for k in keys]}
    tmp = p.with_name(p.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, p)


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over each whole payload (data and metadata), key id in the metadata.

    A process with keys refuses payloads that are not encrypted (`PlaintextRefused`): a
    plaintext `temporal workflow start`, or a client without the key, must not start runs
    or answer tasks. Readers that only display history (`require_encryption=False`) let
    them through. A payload under a key this process lacks, or one that fails to decrypt,
    raises `DecryptionFailed`: Temporal then retries the task, so the run waits for a
    worker with the right key instead of being lost.

    Args:
        keyring: The keys; the first encrypts.
        require_encryption: Refuse plaintext payloads on decode (default True).
    """

    def __init__(self, keyring: Keyring, *, require_encryption: bool = True) -> None:
        self.keyring = keyring
        self.require_encryption = require_encryption

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt every payload under the primary key."""
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt encrypted payloads; pass others through."""
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        """One payload, encrypted (synchronous; used by `encode`)."""
        key = self.keyring.primary
        nonce = os.urandom(_NONCE)
        cipher = self.keyring.cipher(key.id)
        assert cipher is not None
        sealed = cipher.encrypt(nonce, payload.SerializeToString(), key.id.encode())
        return Payload(metadata={"encoding": ENCRYPTED, KEY_ID: key.id.encode()}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        """One payload, decrypted; a plaintext one only when encryption is not required.

        Raises:
            PlaintextRefused: The payload is not encrypted and this codec requires encryption.
            DecryptionFailed: The payload's key is missing here or the payload was altered.
        """
        if payload.metadata.get("encoding") != ENCRYPTED:
            if self.require_encryption:
                raise PlaintextRefused(_plaintext_message(payload))
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self.keyring.cipher(key_id)
        if cipher is None:
            raise DecryptionFailed(
                f"payload was encrypted with key {key_id!r}, which this process does not have "
                f"(it has {', '.join(self.keyring.ids)} from {self.keyring.source}); add that key "
                "to this process's keys (TETHER_KEY_FILE or TETHER_KEYS)", key_id=key_id)
        try:
            plain = cipher.decrypt(payload.data[:_NONCE], payload.data[_NONCE:], key_id.encode())
        except InvalidTag:
            raise DecryptionFailed(
                f"payload encrypted with key {key_id!r} does not decrypt with the key of that id in "
                f"{self.keyring.source}: the key material differs (wrong key file?) or the payload "
                "was altered", key_id=key_id) from None
        return Payload.FromString(plain)


def _plaintext_message(payload: Payload) -> str:
    encoding = payload.metadata.get("encoding", b"").decode(errors="replace")[:40] or "none"
    return (f"refused an unencrypted payload (encoding {encoding!r}): this process holds payload keys, so "
            "every input, signal and answer must be encrypted; send it through an encrypting client "
            "(`tether run`, `tether.Client` or Studio with TETHER_KEY_FILE / TETHER_KEYS set), not a "
            "plain `temporal workflow start`")


class PayloadStore(Protocol):
    """Where claim-checked payloads live; every worker and tool of the deployment reads it."""

    def put(self, name: str, data: bytes) -> None:
        """Store `data` under `name` (content-addressed: same name, same bytes)."""
        ...

    def get(self, name: str) -> bytes:
        """The bytes stored under `name`; raise `KeyError` when there are none."""
        ...


class FileStore:
    """A folder as payload store (shared storage, or one machine in development)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def put(self, name: str, data: bytes) -> None:
        """Write `data` to `<folder>/<name>` unless it is already there."""
        path = self.folder / _file_name(name)
        if path.exists():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{name}.{secrets.token_hex(4)}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def get(self, name: str) -> bytes:
        """Read `<folder>/<name>`: a regular file only (never a FIFO, device or symlink).

        Raises:
            KeyError: There is no such file.
            DecryptionFailed: The name is not a plain file name, or the entry is not a regular file.
        """
        path = self.folder / _file_name(name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            raise KeyError(name) from None
        except OSError as exc:  # e.g. ELOOP: a symlink planted under a hash name
            raise DecryptionFailed(f"cannot read large payload {name[:12]}… from {str(self.folder)!r}: "
                                   f"{exc.strerror}", key_id="") from None
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO would block the reader forever
                raise DecryptionFailed(f"large payload {name[:12]}… in {str(self.folder)!r} is not a regular "
                                       "file; remove it (someone planted it there)", key_id="")
            return f.read()

    def __repr__(self) -> str:
        return f"FileStore({str(self.folder)!r})"


class ClaimCheckCodec(PayloadCodec):
    """Store payloads larger than `threshold` bytes in `store`; send a reference instead.

    Keeps long documents and conversations under Temporal's payload size limit. Put it
    after encryption in a chain so the store only ever holds ciphertext.
    """

    def __init__(self, store: PayloadStore, *, threshold: int = DEFAULT_THRESHOLD) -> None:
        self.store = store
        self.threshold = threshold

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Replace each large payload by a claim check (written off the event loop)."""
        if not any(p.ByteSize() > self.threshold for p in payloads):
            return list(payloads)
        return await asyncio.to_thread(
            lambda: [self._check_in(p) if p.ByteSize() > self.threshold else p for p in payloads])

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Fetch the payload behind each claim check (off the event loop: stores do file or network I/O)."""
        if not any(p.metadata.get("encoding") == CLAIM_CHECK for p in payloads):
            return list(payloads)
        return await asyncio.to_thread(
            lambda: [self._claim(p) if p.metadata.get("encoding") == CLAIM_CHECK else p for p in payloads])

    def _check_in(self, payload: Payload) -> Payload:
        data = payload.SerializeToString()
        name = hashlib.sha256(data).hexdigest()
        self.store.put(name, data)
        return Payload(metadata={"encoding": CLAIM_CHECK}, data=name.encode())

    def _claim(self, payload: Payload) -> Payload:
        name = _checked_name(payload.data.decode(errors="replace"))
        try:
            data = self.store.get(name)
            if hashlib.sha256(data).hexdigest() != name:  # content-addressed: the name is the proof
                raise DecryptionFailed(f"large payload {name[:12]}… in the payload store {self.store!r} does "
                                       "not match its content hash: it was altered", key_id="")
            return Payload.FromString(data)
        except KeyError:
            raise DecryptionFailed(
                f"large payload {name[:12]}… is not in the payload store {self.store!r}; point "
                "TETHER_PAYLOAD_STORE at the store the other workers use", key_id="") from None


_HASH_NAME = re.compile(r"[0-9a-f]{64}")
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*")


def _file_name(name: str) -> str:
    """`name` if it names a file inside the store folder (no separators, no `..`), else `DecryptionFailed`."""
    if len(name) > 200 or not _FILE_NAME.fullmatch(name):
        raise DecryptionFailed(f"payload store entry {name[:40]!r} is not a plain file name; refusing to "
                               "read it (only names tether writes, such as content hashes, are read)", key_id="")
    return name


def _checked_name(name: str) -> str:
    """`name` if it is a claim-check name (a sha256 hex digest), else `DecryptionFailed`."""
    if not _HASH_NAME.fullmatch(name):
        raise DecryptionFailed(f"claim check names {name[:40]!r}, which is not a payload content hash "
                               "(64 hex digits); the payload was not written by tether, refusing to read it",
                               key_id="")
    return name


class CodecChain(PayloadCodec):
    """Apply codecs in order on encode and in reverse order on decode."""

    def __init__(self, *codecs: PayloadCodec) -> None:
        self.codecs = codecs

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encode through every codec, first to last."""
        out = list(payloads)
        for c in self.codecs:
            out = await c.encode(out)
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decode through every codec, last to first."""
        out = list(payloads)
        for c in reversed(self.codecs):
            out = await c.decode(out)
        return out

    @property
    def keyring(self) -> Keyring | None:
        """The keyring of the encryption codec in the chain, if there is one."""
        for c in self.codecs:
            if isinstance(c, EncryptionCodec):
                return c.keyring
        return None


def build_codec(keyring: Keyring | None, *, store: PayloadStore | None = None,
                threshold: int | None = None, require_encryption: bool = True) -> CodecChain:
    """The codec tether uses: encryption (when a keyring is given), then claim checks.

    Args:
        keyring: Payload keys; None sends payloads in plaintext.
        store: Claim-check store (default: `TETHER_PAYLOAD_STORE`, else `payloads` in the state folder).
        threshold: Size above which payloads are claim-checked (default:
            `TETHER_PAYLOAD_THRESHOLD` or 1 MB).
        require_encryption: Refuse plaintext payloads on decode (False for readers that
            run nothing from them, e.g. replay of a fixture recorded without keys).
    """
    configured = settings.current()
    store = store or FileStore(configured.payload_store or configured.state_dir / "payloads")
    if threshold is None:
        threshold = configured.payload_threshold or DEFAULT_THRESHOLD
    claim = ClaimCheckCodec(store, threshold=threshold)
    if keyring is None:
        return CodecChain(claim)
    return CodecChain(EncryptionCodec(keyring, require_encryption=require_encryption), claim)


def default_state_dir() -> Path:
    """The project's state folder: `TETHER_STATE_DIR`, else `.tether` in the current folder."""
    return settings.current().state_dir


def keyring_from_env(state_dir: str | Path | None = None) -> Keyring | None:
    """The configured keys: `TETHER_KEYS`, else `TETHER_KEY_FILE`, else the project's dev key.

    The dev key is `<state_dir>/keys.json` (default: `default_state_dir()`), written by
    `tether dev`. Returns None when nothing is configured (payloads travel in plaintext).

    Raises:
        ConfigError: A configured key source is missing or corrupt.
    """
    configured = settings.current()
    if configured.keys:
        return Keyring.from_env_value(configured.keys)
    if configured.key_file:
        return Keyring.from_file(configured.key_file)
    dev_key = Path(state_dir or default_state_dir()) / KEY_FILE_NAME
    if dev_key.is_file():
        return Keyring.from_file(dev_key)
    return None


def codec_from_env(state_dir: str | Path | None = None) -> CodecChain:
    """`build_codec` with the keys `keyring_from_env` finds."""
    return build_codec(keyring_from_env(state_dir))


def worker_codec(key_file: str | Path | None = None, *, allow_plaintext: bool = False) -> CodecChain:
    """The codec for a production worker: `key_file`, else the configured keys.

    Raises:
        ConfigError: No key is configured and `allow_plaintext` is False, or the key
            source is missing or corrupt.
    """
    keyring = Keyring.from_file(key_file) if key_file else keyring_from_env()
    if keyring is None and not allow_plaintext:
        raise ConfigError("this worker has no payload key, so the Temporal server would store inputs and "
                          "results in plaintext; create one with `tether keys new keys.json` and pass "
                          "--key-file keys.json (or set TETHER_KEY_FILE / TETHER_KEYS), or pass "
                          "--allow-plaintext to run unencrypted")
    return build_codec(keyring)


def dev_codec(state_dir: str | Path) -> CodecChain:
    """The codec for the embedded engine: configured keys, else the dev key (created if needed)."""
    keyring = keyring_from_env(state_dir) or Keyring.from_file(ensure_dev_key(state_dir))
    return build_codec(keyring)


def ensure_dev_key(state_dir: str | Path) -> Path:
    """The development key file `<state_dir>/keys.json`, created on first use."""
    path = Path(state_dir) / KEY_FILE_NAME
    if not path.exists():
        write_key_file(path, [new_key()])
    return path


__all__ = [
    "ClaimCheckCodec",
    "CodecChain",
    "EncryptionCodec",
    "FileStore",
    "Key",
    "Keyring",
    "PayloadStore",
    "build_codec",
    "codec_from_env",
    "default_state_dir",
    "dev_codec",
    "ensure_dev_key",
    "keyring_from_env",
    "new_key",
    "worker_codec",
    "write_key_file",
]
