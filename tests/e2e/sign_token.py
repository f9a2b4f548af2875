"""Sign a JWT with the identity provider emulator's own key (moto's Cognito signs every
pool's tokens with one bundled RSA key), so tests can make tokens the emulator would never
issue: expired ones, or ones naming another pool. Claims as JSON on stdin; the token on
stdout. Run with the project's .venv python."""

import gzip
import json
import sys
from pathlib import Path

import moto.cognitoidp
from joserfc import jwt
from joserfc.jwk import RSAKey

resources = Path(moto.cognitoidp.__file__).parent / "resources"
with gzip.open(resources / "jwks-private.json.gz", "rt") as f:
    private = json.load(f)
key = RSAKey.import_key(private)
claims = json.load(sys.stdin)
print(jwt.encode({"alg": "RS256", "kid": private.get("kid", "dummy")}, claims, key))
