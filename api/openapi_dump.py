"""Print the service's OpenAPI document: `python -m api.openapi_dump > openapi/openapi.json`.

The app is built without touching a database or a key file (an unconnected in-memory engine, a
throwaway signer) and with default settings only, so the output depends on the code alone.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from api.app import create_app
from api.auth import TokenVerifier
from api.database import make_engine
from api.jwks import JwksSource
from api.settings import Settings
from ledger.note import NoteSigner

SPEC_KEY_NAME = "openapi.invalid"


def build_spec() -> dict[str, Any]:
    """The OpenAPI document of create_app, with no I/O."""
    engine = make_engine("sqlite://")  # never connected: no route runs
    try:
        app = create_app(
            # Defaults only, never the environment of whoever generates the file.
            Settings.model_construct(),
            engine=engine,
            checkpoint_signer=NoteSigner.generate(SPEC_KEY_NAME),
            token_verifier=TokenVerifier(
                issuer=SPEC_KEY_NAME, audience=SPEC_KEY_NAME, jwks=JwksSource(keys={})
            ),
        )
        return app.openapi()
    finally:
        engine.dispose()


def render_spec() -> str:
    """The committed form: sorted keys, two-space indent, final newline."""
    return json.dumps(build_spec(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    sys.stdout.write(render_spec())


if __name__ == "__main__":
    main()
