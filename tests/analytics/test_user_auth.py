"""User JWT verification: HS256 with the project secret, RS256 from a JWKS when one is configured, and
no way to make the verifier pick a weaker algorithm."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tokentra_core.settings import get_settings
from tokentra_functions.user_auth import Unauthorized, verify

SUB = "00000000-0000-4000-8000-000000000042"


def claims(**over) -> dict:
    return {"sub": SUB, "role": "authenticated", "aud": "authenticated", "exp": int(time.time()) + 60, **over}


@pytest.fixture
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks_url(rsa_key, monkeypatch) -> Iterator[str]:
    """A local JWKS endpoint serving the key's public half, configured as SUPABASE_JWKS_URL."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "test-key", "alg": "RS256", "use": "sig"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/auth/v1/.well-known/jwks.json"
    monkeypatch.setattr(get_settings(), "supabase_jwks_url", url)
    yield url
    server.shutdown()
    server.server_close()


def test_an_hs256_token_signed_with_the_project_secret_is_accepted():
    token = jwt.encode(claims(email="a@example.com"), get_settings().supabase_jwt_secret, algorithm="HS256")
    user = verify(token)
    assert str(user.sub) == SUB and user.model_dump()["email"] == "a@example.com"


def test_an_rs256_token_is_checked_against_the_jwks(rsa_key, jwks_url):
    token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "test-key"})
    assert str(verify(token).sub) == SUB
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Unauthorized):
        verify(jwt.encode(claims(), other, algorithm="RS256", headers={"kid": "test-key"}))


def test_asymmetric_tokens_are_refused_without_a_jwks(rsa_key, monkeypatch):
    monkeypatch.setattr(get_settings(), "supabase_jwks_url", None)
    with pytest.raises(Unauthorized):
        verify(jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "test-key"}))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_the_public_key_cannot_be_used_as_an_hmac_secret(rsa_key, jwks_url):
    # algorithm confusion: HS256 "signed" with the published public key must not pass
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": "test-key"}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims()).encode())}"
    forged = f"{signing_input}.{_b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())}"
    with pytest.raises(Unauthorized):
        verify(forged)


@pytest.mark.parametrize(
    "bad", [{"aud": "other"}, {"role": "anon"}, {"exp": int(time.time()) - 5}, {"sub": "nope"}]
)
def test_wrong_claims_are_refused(bad):
    with pytest.raises(Unauthorized):
        verify(jwt.encode(claims(**bad), get_settings().supabase_jwt_secret, algorithm="HS256"))
