"""``Idempotency-Key``: a creating request sent again gets the first answer, and its effect happens once.

A client may send ``Idempotency-Key: <1 to 255 visible ASCII characters>``
(a UUID, say) with a creating call of either API. The key is taken (its row
inserted) before the request's effect, in the same transaction, and the
answer is written into the row before that transaction commits. So:

- a committed key always comes with its effect and its answer, and a
  failure before the commit leaves neither: the key is free again;
- the same request again, with the same key and token, within 24 hours,
  gets the kept answer (marked ``Idempotent-Replayed: true``), also when
  the first answer was lost after the commit (a 503, a dropped connection);
- a concurrent request with the same key waits on the unique index until
  the first commits (then it replays its answer) or rolls back (then it
  goes ahead itself): one effect either way;
- the same key with another request (method, path or body) is refused:
  the client has mixed up its keys, and guessing which request it meant
  could only do the wrong one;
- after 24 hours a key is forgotten: taken afresh if used again, removed a
  few at a time as the token takes keys, and all at once by
  ``diversion api forget-keys``.

Only answers that changed something are kept: a refused request rolls
back, key included, and may be corrected and sent again with the same key.

Keys are kept per token: ``IdempotencyKey`` rows are the force's (a force
token), ``ProviderIdempotencyKey`` rows the provider's (a provider token).
Services take explicit arguments, flush and never commit.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeVar

from sqlalchemy import (
    ColumnElement,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    UniqueConstraint,
    delete,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from diversion.db import (
    Base,
    ProviderOwned,
    TenantScoped,
    UTCDateTime,
    insert_skipping_conflicts,
    new_id,
    tenant_foreign_key,
    utcnow,
)
from diversion.errors import FieldError
from diversion.extensions import db
from diversion.sealing import data_cipher

MAX_KEY_LENGTH = 255
HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEEP_FOR = timedelta(hours=24)
# Expired keys removed each time a token takes a key: enough to keep up with
# any rate of new keys, few enough to cost nothing.
FORGET_PER_TAKE = 20
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")


class KeptAnswer:
    """The columns of a request kept under its ``Idempotency-Key``.

    ``fingerprint`` is a hash of what was asked (method, path, body), to
    tell a retry from another request under the same key. The answer
    (``status``, ``body``, ``location``) is written in the transaction of
    the request's effect, so a committed key always has its answer. The
    body is sealed with the platform's data keys, as an answer can carry a
    person's name and contact details.
    """

    # The unique key: which token's key it is.
    key_columns: ClassVar[tuple[str, ...]]

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    token_id: Mapped[uuid.UUID]
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None]
    body_sealed: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IdempotencyKey(KeptAnswer, TenantScoped, Base):
    """A force token's request kept under its key, for 24 hours: the force's row, under every isolation layer."""

    __tablename__ = "idempotency_keys"
    __tenant_from_parent__ = True  # its token holds the force
    __tenant_table_args__ = (
        tenant_foreign_key("api_tokens", "token_id", ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "token_id", "key"),
        Index(None, "tenant_id", "expires_at"),
    )
    key_columns = ("tenant_id", "token_id", "key")


class ProviderIdempotencyKey(ProviderOwned, KeptAnswer, Base):
    """A provider token's request kept under its key, for 24 hours: the provider's row.

    Not a force's: one token works across every force the provider serves,
    so its keys are one set per token, whatever force each request touched
    (a key used for a referral in one force cannot be used again for one
    in another). Filing them under the referral's force would either split
    that set per force or put a unique index across forces whose rows the
    request's scope could neither see nor remove. So they are kept like
    the provider's tokens and webhook endpoint, as the provider's own rows;
    the database ties each to its provider's token (a composite foreign
    key), and the ORM guard and PostgreSQL row-level security show them only
    with that provider in scope (``app.provider_id``): never to a force,
    another provider or a page.
    """

    __tablename__ = "provider_idempotency_keys"
    __table_args__ = (
        ForeignKeyConstraint(["provider_id", "token_id"], ["provider_tokens.provider_id", "provider_tokens.id"],
                             ondelete="CASCADE"),
        UniqueConstraint("token_id", "key"),
        Index(None, "provider_id", "expires_at"),
    )
    key_columns = ("token_id", "key")

    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))


K = TypeVar("K", bound=KeptAnswer)


class IdempotencyError(FieldError):
    """A refused ``Idempotency-Key``: malformed, or used with another request."""


@dataclass(frozen=True)
class Answer:
    """An answer as it was given: to keep, and to replay."""

    status: int
    body: str
    location: str | None


@dataclass(frozen=True)
class Taken:
    """A key this request holds until its transaction ends."""

    model: type[KeptAnswer]
    id: uuid.UUID


def checked_key(values: Sequence[str]) -> str | None:
    """The key of a request's ``Idempotency-Key`` header (its values), or None when it has none.

    Refuses (``IdempotencyError``) the header given more than once, and a
    key that is empty, longer than 255 characters, or has anything but
    visible ASCII characters (no spaces).
    """
    if not values:
        return None
    if len(values) > 1:
        raise IdempotencyError(HEADER, "Send one Idempotency-Key, not several.")
    key = values[0]
    if not key or len(key) > MAX_KEY_LENGTH or not _VISIBLE_ASCII.fullmatch(key):
        raise IdempotencyError(HEADER, f"The key must be 1 to {MAX_KEY_LENGTH} visible ASCII characters with no "
                                       "spaces, such as a UUID.")
    return key


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What tells one request from another under the same key: method, path and body.

    A JSON body counts by its content, so that a client that serialises
    its retry afresh (another key order, other spacing) still matches.
    """
    try:
        content = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:  # not JSON (nor UTF-8): the bytes as sent
        content = body
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), content):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def _owned(model: type[K], owner: dict[str, Any]) -> list[ColumnElement[bool]]:
    return [getattr(model, name) == value for name, value in owner.items()]


def _insert_if_free(model: type[K], values: dict[str, Any]) -> uuid.UUID | None:
    """Insert a key row unless the key is taken; its id, or None when it is.

    ``ON CONFLICT DO NOTHING`` rather than catching the unique violation:
    no savepoint is needed, and on PostgreSQL a conflicting row that is not
    yet committed makes this wait for its transaction, then insert (it
    rolled back) or not (it committed).
    """
    statement = insert_skipping_conflicts(model).returning(model.id)  # the key is its one unique key
    # The values as parameters, where the ORM guard stamps and checks a force-owned row.
    found: uuid.UUID | None = db.session.execute(statement, values).scalar_one_or_none()
    return found


def _forget_some(model: type[K], owner: dict[str, Any], now: datetime) -> None:
    """Remove a few of the token's expired keys, skipping any another transaction holds."""
    expired = (select(model.id).where(*_owned(model, owner), model.expires_at <= now)
               .limit(FORGET_PER_TAKE).with_for_update(skip_locked=True))
    db.session.execute(delete(model).where(model.id.in_(expired.scalar_subquery()))
                       .execution_options(synchronize_session=False))


def take(model: type[K], owner: dict[str, Any], key: str, request: str, *, now: datetime) -> Taken | Answer:
    """Take ``key`` for a request (its ``fingerprint``) of the token ``owner`` names, before its effect.

    ``owner`` gives the row's owning columns: ``tenant_id`` and ``token_id``
    (a force token), or ``provider_id`` and ``token_id`` (a provider token).
    Returns the key, held by this transaction, or the kept ``Answer`` of the
    same request to replay. A key over 24 hours old is taken afresh.
    Refuses (``IdempotencyError``) a key the token used with another request
    in the last 24 hours.
    """
    _forget_some(model, owner, now)
    for _attempt in range(3):
        taken = _insert_if_free(model, {**owner, "id": new_id(), "key": key, "fingerprint": request,
                                        "created_at": now, "expires_at": now + KEEP_FOR})
        if taken is not None:
            return Taken(model, taken)
        kept = db.session.scalar(select(model).where(*_owned(model, owner), model.key == key)
                                 .with_for_update().execution_options(populate_existing=True))
        if kept is None:
            continue  # removed since the insert found it (expired): take it again
        if kept.expires_at <= now:  # forgotten: this request takes it, the row being locked by now
            kept.fingerprint, kept.status, kept.body_sealed, kept.location = request, None, None, None
            kept.created_at, kept.expires_at = now, now + KEEP_FOR
            db.session.flush()
            return Taken(model, kept.id)
        if kept.fingerprint != request:
            raise IdempotencyError(HEADER, "This key was used with another request in the last 24 hours: send "
                                           "each new request with a new key.")
        if kept.status is None or kept.body_sealed is None:  # a committed key has its answer: never seen
            break
        return Answer(kept.status, data_cipher().decrypt(kept.body_sealed.encode()).decode(), kept.location)
    raise IdempotencyError(HEADER, "This key is in use by another request: send this one again in a moment.")


def remember(taken: Taken, answer: Answer) -> None:
    """Keep the answer with the key, in the transaction of the request's effect."""
    model = taken.model
    db.session.execute(
        update(model).where(model.id == taken.id)
        .values(status=answer.status, body_sealed=data_cipher().encrypt(answer.body.encode()).decode(),
                location=answer.location)
        .execution_options(synchronize_session=False))


def forget_expired(model: type[K], *, now: datetime, **owner: Any) -> int:
    """Remove the expired keys of ``model`` (of one owner, e.g. ``provider_id=``); returns how many."""
    result: Any = db.session.execute(delete(model).where(*_owned(model, owner), model.expires_at <= now)
                                     .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)
