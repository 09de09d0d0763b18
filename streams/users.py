"""API users and their bearer tokens.

Users live on the compacted topic ``comstream.users`` (key: user id, value: the JSON of
:class:`User`), so every worker reads the same users: each loads the topic whole at
start and follows it in a thread, like the dimension topics. A token is 32 random bytes
(``secrets.token_urlsafe``) shown once by ``comstream users add``; only its SHA-256 is
stored. SHA-256 without a salt is enough for a 256-bit random secret (nothing to
brute-force); a password would need scrypt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from processors.errors import ComstreamError
from processors.payouts import Actor, Role

from .kafka import TopicFollower, flush, make_producer
from .settings import Settings

log = logging.getLogger(__name__)

TOKEN_PREFIX = "cst_"
_REP_RE = re.compile(r"^[^|\s]{1,200}$")


class UserError(ComstreamError):
    """A user that cannot be created (bad role, missing rep id)."""


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    name: str
    role: str
    rep_id: str | None
    team: str | None
    token_sha256: str
    created_at: str
    active: bool = True

    @property
    def actor(self) -> Actor:
        return Actor(self.user_id, Role(self.role), self.rep_id, self.team)

    def public(self) -> dict[str, object]:
        """The user without the token hash."""
        return {
            "user_id": self.user_id,
            "name": self.name,
            "role": self.role,
            "rep_id": self.rep_id,
            "team": self.team,
            "active": self.active,
        }


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_user(
    name: str, role: str, rep_id: str | None = None, team: str | None = None
) -> tuple[User, str]:
    """A new user and its token (the only time the token exists in clear). A rep needs
    a rep id; a manager a team or a rep id (whose reports they lead)."""
    if role not in {r.value for r in Role}:
        raise UserError(f"role {role!r}: expected one of rep, manager, finance, admin")
    if not name.strip():
        raise UserError("a user needs a name")
    if role == Role.REP and not rep_id:
        raise UserError("a rep user needs --rep-id")
    if role == Role.MANAGER and not (team or rep_id):
        raise UserError("a manager user needs --team (or --rep-id of the manager)")
    if rep_id is not None and not _REP_RE.match(rep_id):
        raise UserError(f"rep id {rep_id!r} holds a '|' or white space")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user = User(
        user_id="u-" + secrets.token_hex(6),
        name=name,
        role=role,
        rep_id=rep_id or None,
        team=team or None,
        token_sha256=token_hash(token),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return user, token


def encode_user(user: User) -> bytes:
    return json.dumps(asdict(user), ensure_ascii=False, sort_keys=True).encode()


def decode_user(value: bytes) -> User | None:
    try:
        raw = json.loads(value)
        return User(**raw)
    except (ValueError, TypeError):
        return None


def publish_user(settings: Settings, user: User) -> None:
    """Write ``user`` to the users topic and wait for the acknowledgement."""
    producer = make_producer(settings.bootstrap)
    producer.produce(settings.topics.users, key=user.user_id.encode(), value=encode_user(user))
    flush(producer)


class Users:
    """The users known to this worker; lookups are lock-free snapshots."""

    def __init__(self) -> None:
        self._by_id: dict[str, User] = {}
        self._by_hash: dict[str, User] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._by_id)

    def apply(self, user: User) -> None:
        with self._lock:
            by_id = dict(self._by_id)
            by_id[user.user_id] = user
            self._by_id = by_id
            self._by_hash = {u.token_sha256: u for u in by_id.values() if u.active}

    def apply_bytes(self, value: bytes | None) -> None:
        if value is None:
            return
        user = decode_user(value)
        if user is None:
            log.error("not a user record on the users topic")
            return
        self.apply(user)

    def by_token(self, token: str) -> User | None:
        """The active user holding ``token``, or None (compared in constant time)."""
        digest = token_hash(token)
        user = self._by_hash.get(digest)
        if user is not None and hmac.compare_digest(user.token_sha256, digest):
            return user
        return None

    def get(self, user_id: str) -> User | None:
        return self._by_id.get(user_id)

    def all(self) -> list[User]:
        return sorted(self._by_id.values(), key=lambda u: u.user_id)


def auth_enabled(settings: Settings, users: Users) -> bool:
    """``COMSTREAM_AUTH``: true, false, or auto (on as soon as one user exists)."""
    if settings.auth == "true":
        return True
    if settings.auth == "false":
        return False
    return len(users) > 0


class UserFollower(TopicFollower):
    """Loads the users topic whole, then follows it until :meth:`stop`."""

    def __init__(self, settings: Settings, users: Users) -> None:
        super().__init__(settings, (settings.topics.users,), users.apply_bytes, "users")
        self.users = users
