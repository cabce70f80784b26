"""The vault: secrets connected in the web app (tokens, OAuth client secrets, PKCE verifiers)
encrypted before they reach the database, with Fernet (AES-128-CBC + HMAC-SHA256, from
`cryptography`).

The key is `CRIER_SECRET_KEY`, read from the environment, else from the `.env` next to the
config file (the environment wins, as for every other secret). It is either

- a Fernet key, 44 URL-safe base64 characters: `crier secret-key` prints a new one; or
- a passphrase of at least 32 characters, turned into a Fernet key with PBKDF2-HMAC-SHA256
  (600,000 iterations, the fixed salt `KDF_SALT`: the same passphrase always gives the same
  key, so every process of a deployment can read what another one stored).

Without the key crier refuses to store a connected secret and says how to make one; with
another key than the one a secret was stored with, reading it fails with one clear line. No
message ever contains a secret. An adapter: it imports no other crier module but the errors.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from bot.errors import CrierError

ENV_KEY = "CRIER_SECRET_KEY"
KDF_SALT = b"crier:CRIER_SECRET_KEY:v1"
KDF_ITERATIONS = 600_000          # OWASP's 2023 figure for PBKDF2-HMAC-SHA256
MIN_PASSPHRASE = 32
HOW_TO_MAKE_ONE = (f"run `crier secret-key` and put the line it prints in the environment or "
                   f"the .env next to the config ({ENV_KEY}=...); keep it: secrets stored with "
                   "one key cannot be read with another")


class VaultError(CrierError):
    """No key, a key that is not one, or a secret stored with another key."""


def generate_key() -> str:
    """A new random Fernet key (what `crier secret-key` prints)."""
    from cryptography.fernet import Fernet
    return Fernet.generate_key().decode()


@functools.lru_cache(maxsize=8)
def derive_key(passphrase: str) -> bytes:
    """A Fernet key from a long passphrase: PBKDF2-HMAC-SHA256, `KDF_ITERATIONS` rounds,
    the fixed salt `KDF_SALT` (remembered per process: deriving takes a fraction of a
    second)."""
    raw = hashlib.pbkdf2_hmac("sha256", passphrase.encode(), KDF_SALT, KDF_ITERATIONS, 32)
    return base64.urlsafe_b64encode(raw)


def key_from(value: str) -> bytes:
    """The Fernet key `value` names: itself if it is one, else derived from a passphrase."""
    value = value.strip()
    try:
        if len(value) == 44 and len(base64.urlsafe_b64decode(value.encode())) == 32:
            return value.encode()
    except (binascii.Error, ValueError):
        pass
    if len(value) < MIN_PASSPHRASE:
        raise VaultError(f"{ENV_KEY} is neither a Fernet key nor a passphrase of at least "
                         f"{MIN_PASSPHRASE} characters (it has {len(value)}): "
                         f"{HOW_TO_MAKE_ONE}")
    return derive_key(value)


class Vault:
    """Encrypts and decrypts text with one key. `seal`/`unseal` hold a dict of values."""

    def __init__(self, key: str | bytes):
        from cryptography.fernet import Fernet
        self._fernet = Fernet(key_from(key.decode() if isinstance(key, bytes) else key))

    def __repr__(self) -> str:
        return "Vault(key='***')"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *,
                 dotenv: str | os.PathLike | None = None) -> Vault:
        """The vault keyed by CRIER_SECRET_KEY from `env` (default os.environ), else from the
        `dotenv` file (the `.env` next to the config); VaultError saying how to make a key
        when there is none."""
        env = os.environ if env is None else env
        value = (env.get(ENV_KEY) or "").strip()
        if not value and dotenv is not None and Path(dotenv).is_file():
            from dotenv import dotenv_values
            value = (dotenv_values(dotenv).get(ENV_KEY) or "").strip()
        if not value:
            raise VaultError(f"connected accounts need {ENV_KEY} to encrypt their secrets, "
                             f"and it is not set: {HOW_TO_MAKE_ONE}")
        return cls(value)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str, *, what: str = "a stored secret") -> str:
        """The plaintext; VaultError naming `what` (never the secret) if this key did not
        make it or it was altered."""
        from cryptography.fernet import InvalidToken
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except (InvalidToken, ValueError, TypeError):
            raise VaultError(f"cannot decrypt {what}: {ENV_KEY} is not the key it was stored "
                             "with (set that key again, or connect the account again)"
                             ) from None

    def seal(self, values: Mapping[str, str]) -> str:
        """Several secrets as one encrypted value."""
        return self.encrypt(json.dumps(dict(values), separators=(",", ":")))

    def unseal(self, token: str, *, what: str = "a stored secret") -> dict[str, str]:
        data = json.loads(self.decrypt(token, what=what))
        if not isinstance(data, dict):
            raise VaultError(f"cannot read {what}: not what crier stores")
        return {str(k): str(v) for k, v in data.items()}
