"""What the engine is given to log in to a simulator side: a password, or an OAuth token file.

``wrong_password: true`` gives a wrong password (refused-login scenarios). ``auth: xoauth2``
gives the engine ``?auth=xoauth2`` and the secret as a token file, which it re-reads at every
(re)connect. ``rotate_token: true`` adds a refresher: when the side's ``oauth-token-expiry`` quirk
says the current token has no login left, the quirk issues a new one (the provider's token
endpoint) and it replaces the file's content (write, then rename: a reader never sees half).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import ExitStack
from pathlib import Path

from migrator.urls import Endpoint, ServerURL, resolve_secret, Secret
from scenarios.model import ScenarioError, ServerSpec

WRONG_PASSWORD_SUFFIX = "-wrong"


def engine_endpoint(spec: ServerSpec, url: str, password: str, world, stack: ExitStack) -> Endpoint:
    """The engine's Endpoint for a simulator side served by ``world`` at ``url`` (no secret)."""
    given = password + WRONG_PASSWORD_SUFFIX if spec.wrong_password else password
    if spec.auth != "xoauth2":
        return Endpoint(ServerURL.parse(url), Secret(given), cafile=world.cafile)
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="quirkmail-token-")))
    token_file = folder / "token"
    _write(token_file, given)  # the account's password is its first token
    if spec.rotate_token:
        expiries = world.quirks("oauth-token-expiry")
        if not expiries:
            raise ScenarioError("<scenario>", "rotate_token", "needs the oauth-token-expiry quirk on that side")
        for quirk in expiries:
            quirk.watch(_refresher(quirk, token_file))
    secret = resolve_secret(file=token_file)
    return Endpoint(ServerURL.parse(url + "?auth=xoauth2"), secret, cafile=world.cafile)


def _refresher(quirk, token_file: Path):
    def refresh(user: str, logins_left: int | None) -> None:
        if logins_left is not None and logins_left <= 0:
            _write(token_file, quirk.issue(user))

    return refresh


def _write(path: Path, text: str) -> None:
    scratch = path.with_suffix(".new")
    scratch.write_text(text + "\n", encoding="utf-8")
    os.replace(scratch, path)
