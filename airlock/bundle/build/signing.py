"""Signatures over a bundle's INDEX.

INDEX (airlock.bundle.build.bundletar) lists the sha256, size, mode and name of every
member in archive order, SHA256SUMS and MANIFEST.json included, so its signature covers
the whole bundle. (Bundles before INDEX signed SHA256SUMS only, as SHA256SUMS.sig; verify
refuses those when a key is given.)

Keys are PEM files. Ed25519 signs the raw INDEX bytes; RSA (PKCS#1 v1.5) and ECDSA sign
its SHA-256. The same signatures come from openssl, so a release team can sign without
airlock:

    openssl genpkey -algorithm ed25519 -out bundle.key
    openssl pkey -in bundle.key -pubout -out bundle.pub
    openssl pkeyutl -sign -rawin -inkey bundle.key -in INDEX -out INDEX.sig
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from airlock.errors import AirlockError


class SignatureError(AirlockError):
    """The signature is absent, malformed or does not match the key."""


def signer(private_key_path: Path) -> Callable[[bytes], bytes]:
    """A function that signs bytes with the PEM private key at `private_key_path`."""
    try:
        key = serialization.load_pem_private_key(private_key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SignatureError(
            f"cannot read signing key {private_key_path}: {exc}; pass an unencrypted PEM key "
            "(openssl genpkey -algorithm ed25519 -out bundle.key)"
        ) from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign
    if isinstance(key, rsa.RSAPrivateKey):
        return lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return lambda data: key.sign(data, ec.ECDSA(hashes.SHA256()))
    raise SignatureError(f"{private_key_path}: use an ed25519, RSA or ECDSA key")


def verify_signature(public_key_path: Path, data: bytes, signature: bytes) -> None:
    """Raise SignatureError unless `signature` over `data` matches the PEM public key."""
    try:
        key = serialization.load_pem_public_key(public_key_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise SignatureError(
            f"cannot read public key {public_key_path}: {exc}; pass a PEM public key "
            "(openssl pkey -in bundle.key -pubout)"
        ) from None
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            raise SignatureError(f"{public_key_path}: use an ed25519, RSA or ECDSA key")
    except InvalidSignature:
        raise SignatureError(
            f"INDEX.sig does not match the key {public_key_path}: the bundle was not "
            "signed by that key or its INDEX was changed; do not install it"
        ) from None
