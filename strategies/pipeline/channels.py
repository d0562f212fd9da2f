"""Connected marketplaces in the pipeline (PLATFORMS.md): pushes in, fetches, polls, updates and
tokens, written once against the neutral channel protocol (``platforms.channel``) for Kuaishou
and Douyin alike.

- **Push**: verified or decrypted by the adapter (a bad one is refused and stores nothing), then
  every event stored in ONE ``INSERT … ON CONFLICT DO NOTHING`` on (platform, event id), and
  answered at once; only the rows this insert created are queued (``PUSH_TASK``), after COMMIT.
- **Sync**: a push, a retry of it and a poll of the same refund all end in ``aftersale_sync``,
  which fetches the details and hands them to ``intake.request_receive``: the unique
  (shop, aftersale_id) makes them one request.
- **Updates**: an undecided request takes the fresh data (or ends ``superseded`` /
  ``done_elsewhere``); an approval not yet carried out is handed back to the execution, which
  re-reads the platform under its lease and supersedes, marks done elsewhere or executes: no
  second writer of a decision's outcome.
- **Tokens** (Kuaishou and Douyin alike): one refresh at a time per channel (its row lock held
  across the call, since the platform discards the old refresh token), the new pair stored in
  the same transaction. A Douyin channel without a refresh token (a self-built app) gets a new
  token from its app credentials (``token.create`` ``authorization_self``) instead.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from strategies.models import (
    AfterSaleRequest,
    Channel,
    Platform,
    PushMessage,
    RequestStatus,
    app_key_digest,
)
from strategies.pipeline.intake import PayloadConflict, payload_digest, request_receive
from strategies.pipeline.publish import (
    CHANNEL_ALERT_AUTH,
    CHANNEL_ALERT_EXPIRING,
    CHANNEL_ALERT_POLL,
    CHANNEL_ALERT_PUSH,
    CHANNEL_ALERT_TASK,
    EXECUTE_TASK,
    POLL_CHANNEL_TASK,
    PUSH_TASK,
    REFRESH_CHANNEL_TASK,
    publish_on_commit,
)
from strategies.platforms.channel import (
    Fetched,
    PushEvent,
    PushKind,
    PushRejected,
    TokenRefused,
)
from strategies.platforms.douyin.channel import DouyinChannel
from strategies.platforms.registry import CALL_ERRORS, CONNECTED, adapter_for, is_auth_error

logger = logging.getLogger(__name__)

# The poller looks back this far before its high-water mark (a refund updated while the last
# poll ran is seen again, never missed), and this far on its first run.
POLL_MARGIN = dt.timedelta(minutes=10)
POLL_FIRST_WINDOW = dt.timedelta(days=1)
# Refresh an access token this long before it expires; alert this long before the refresh
# token dies (PLATFORMS.md "Tokens"). A Douyin refresh token lives 14 days and each refresh of
# its 7-day access token brings a new one: 7 days ahead would alert on every healthy channel
# just before its refresh, so Douyin alerts 3 days ahead (refreshes failing for 4 days).
REFRESH_AHEAD = dt.timedelta(hours=6)
REFRESH_TOKEN_ALERT_AHEAD = dt.timedelta(days=7)
REFRESH_TOKEN_ALERT_AHEAD_BY_PLATFORM = {
    Platform.KUAISHOU: REFRESH_TOKEN_ALERT_AHEAD,
    Platform.DOUYIN: dt.timedelta(days=3),
}
REFRESHED = tuple(REFRESH_TOKEN_ALERT_AHEAD_BY_PLATFORM)
# Per-call deadline of the reads done outside an execution.
READ_DEADLINE = 10.0
ACTIVE = (RequestStatus.RECEIVED, RequestStatus.APPROVED)
# Refused pushes in a row before the merchant is told: a misconfigured key refuses every push,
# a stray or forged one should not send an SMS.
PUSH_REFUSALS_ALERT = 3
# Polls failed in a row before the merchant is told: about five minutes at Kuaishou's period,
# long enough that one slow minute of the platform says nothing. Lost pushes are found only
# by the poller, so from here on they may be missed.
POLL_FAILURES_ALERT = 5


PUSH_INSERT = (
    'INSERT INTO "strategies_pushmessage" ("platform", "event_id", "channel_id", "kind", '
    '"event", "aftersale_id", "merchant", "raw", "received_at", "note") VALUES {values} '
    'ON CONFLICT ("platform", "event_id") DO NOTHING RETURNING "id", "channel_id"'
)


class ChannelUnavailable(Exception):
    """A call to the platform failed in a way a retry may fix (the task retries)."""


# --- push in ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushAnswer:
    status: int
    body: dict[str, Any]
    stored: int = 0  # new messages this push stored (0 for a replay)


def push_receive(
    *, platform: str, app_key: str, body: bytes, headers: Mapping[str, str]
) -> PushAnswer:
    """Verifies and stores one push for the app ``app_key``; the answer to give the platform.

    Nothing is stored for a push the adapter refuses (400 undecryptable, 401 wrong signature)
    or for an app no shop is connected with (401)."""
    channels = list(
        Channel.objects.filter(platform=platform, app_key_lookup=app_key_digest(app_key))
        .select_related("shop")
        .order_by("pk")
    )
    if not channels or platform not in CONNECTED:
        return PushAnswer(401, {"error": "unknown app"})
    adapter = adapter_for(channels[0])
    try:
        events = adapter.parse_push(body, headers)
    except PushRejected as exc:
        logger.warning("%s push for app %s refused: %s", platform, channels[0].app_key_hint, exc)
        _push_refused(channels=channels, error=exc.message)
        return PushAnswer(exc.status, {"error": exc.message})
    now = timezone.now()
    with transaction.atomic():
        created = _store_events(platform=platform, channels=channels, events=events, now=now)
        Channel.objects.filter(pk__in=[c.pk for c in channels]).update(
            last_push_at=now, push_refusals=0
        )
        for message_id, has_channel in created:
            if has_channel:
                publish_on_commit(PUSH_TASK, message_id)
    return PushAnswer(200, dict(adapter.push_answer), stored=len(created))


def _push_refused(*, channels: list[Channel], error: str) -> None:
    """Counts the refusal on the app's channels and shows it on their health panels; once
    ``PUSH_REFUSALS_ALERT`` pushes in a row were refused, alerts each channel (once)."""
    now = timezone.now()
    pks = [c.pk for c in channels]
    with transaction.atomic():
        Channel.objects.filter(pk__in=pks).update(
            push_refusals=models.F("push_refusals") + 1,
            last_error=f"push refused: {error}"[:2000],
            last_error_at=now,
        )
        for pk in Channel.objects.filter(
            pk__in=pks, push_refusals__gte=PUSH_REFUSALS_ALERT, push_alerted_at__isnull=True
        ).values_list("pk", flat=True):
            _alert_once(channel_id=pk, kind=CHANNEL_ALERT_PUSH, now=now)


def _channel_for(event: PushEvent, channels: list[Channel]) -> Channel | None:
    for row in channels:
        if row.merchant_id and row.merchant_id == event.merchant:
            return row
    # A single channel on the app takes its messages; several: only the named merchant's.
    if len(channels) == 1:
        return channels[0]
    return None


def _store_events(
    *, platform: str, channels: list[Channel], events: list[PushEvent], now: dt.datetime
) -> list[tuple[int, bool]]:
    """One INSERT … ON CONFLICT DO NOTHING RETURNING for the whole push: (id, has a channel)
    of each row it created."""
    unique: dict[str, PushEvent] = {}
    for event in events:
        unique.setdefault(event.event_id, event)
    if not unique:
        return []
    raw_field = PushMessage._meta.get_field("raw")
    assert isinstance(raw_field, models.JSONField)
    rows: list[Any] = []
    placeholders = []
    for event in unique.values():
        channel = _channel_for(event, channels)
        rows += [
            platform,
            event.event_id[:128],
            channel.pk if channel else None,
            str(event.kind),
            event.event[:64],
            event.aftersale_id[:64],
            event.merchant[:64],
            raw_field.get_db_prep_value(event.raw, connection),
            connection.ops.adapt_datetimefield_value(now),
            "" if channel else "no channel of this app has this merchant",
        ]
        placeholders.append("(" + ", ".join(["%s"] * 10) + ")")
    # Only "%s" placeholders are joined in: every value is a bound parameter.
    sql = PUSH_INSERT.replace("{values}", ", ".join(placeholders))
    with connection.cursor() as cursor:
        cursor.execute(sql, rows)
        return [(int(pk), channel_id is not None) for pk, channel_id in cursor.fetchall()]


def push_process(*, message_id: int) -> str:
    """Does the work of one stored message (fetch, then intake or update); idempotent. Raises
    ``ChannelUnavailable`` when the platform could not be read (the task retries)."""
    message = (
        PushMessage.objects.select_related("channel__shop")
        .filter(pk=message_id, processed_at__isnull=True)
        .first()
    )
    if message is None:
        return "done"
    row = message.channel
    if row is None or row.platform not in CONNECTED or row.platform != message.platform:
        note = "no connected channel"
    elif not message.aftersale_id:
        note = "nothing to do"
    else:
        note = aftersale_sync(row=row, aftersale_id=message.aftersale_id, kind=message.kind)
    PushMessage.objects.filter(pk=message_id, processed_at__isnull=True).update(
        processed_at=timezone.now(), note=note[:2000]
    )
    return note


# --- one request: fetched, stored, updated ------------------------------------------------------


def aftersale_sync(*, row: Channel, aftersale_id: str, kind: str) -> str:
    """Brings ATOM's request ``aftersale_id`` of ``row``'s shop in line with the platform after
    a ``kind`` of change (``PushKind``); what it did, for the message's note."""
    if kind == PushKind.OTHER:
        return "ignored"
    stored = _stored(row=row, aftersale_id=aftersale_id)
    if stored is None:
        if kind in (PushKind.CLOSED, PushKind.AGREED):
            return "not known here: nothing to do"
        fetched = channel_fetch(row, aftersale_id)
        if fetched.request is None:
            # Exchanges, resends, price protection...: never decided automatically; the merchant
            # handles them on the platform (docs/platforms/).
            return f"not auto-decided: {fetched.manual_review} {fetched.manual_params}"
        try:
            receipt = request_receive(
                shop=row.shop, request=fetched.request, payload=fetched.payload
            )
        except PayloadConflict as exc:
            return _update(row=row, request=exc.request, kind=PushKind.UPDATED, fetched=fetched)
        return "received" if receipt.created else "already received"
    return _update(row=row, request=stored, kind=kind, fetched=None)


def _stored(*, row: Channel, aftersale_id: str) -> AfterSaleRequest | None:
    return (
        AfterSaleRequest.objects.filter(shop_id=row.shop_id, aftersale_id=aftersale_id)
        .defer("payload")
        .first()
    )


def _update(*, row: Channel, request: AfterSaleRequest, kind: str, fetched: Fetched | None) -> str:
    now = timezone.now()
    if request.status == RequestStatus.APPROVED:
        # Not ours to write: the execution re-reads the platform under its lease and records
        # executed, superseded or done elsewhere (execute.py).
        decision_id = (
            AfterSaleRequest.objects.filter(pk=request.pk)
            .values_list("decision__id", flat=True)
            .first()
        )
        if decision_id is not None:
            with transaction.atomic():
                publish_on_commit(EXECUTE_TASK, decision_id)
        return "approval re-checked by its execution"
    if request.status == RequestStatus.MANUAL_REVIEW and kind == PushKind.AGREED:
        moved = _move(request, RequestStatus.MANUAL_REVIEW, RequestStatus.DONE_ELSEWHERE, now)
        return "handled elsewhere" if moved else "unchanged"
    if request.status != RequestStatus.RECEIVED:
        return f"already {request.status}"
    if kind == PushKind.CLOSED:
        return "superseded" if _move(request, None, RequestStatus.SUPERSEDED, now) else "raced"
    if kind == PushKind.AGREED:
        moved = _move(request, None, RequestStatus.DONE_ELSEWHERE, now)
        return "handled elsewhere" if moved else "raced"
    fetched = fetched or channel_fetch(row, request.aftersale_id)
    if fetched.snapshot.done:
        moved = _move(request, None, RequestStatus.DONE_ELSEWHERE, now)
        return "handled elsewhere" if moved else "raced"
    if not fetched.snapshot.awaiting_seller or fetched.request is None:
        return "superseded" if _move(request, None, RequestStatus.SUPERSEDED, now) else "raced"
    fresh = fetched.request
    # Still undecided (the decision takes the request's row lock; so does this update): it is
    # decided on the fresh data.
    changed = AfterSaleRequest.objects.filter(pk=request.pk, status=RequestStatus.RECEIVED).update(
        amount=fresh.amount,
        type=fresh.type,
        reason=fresh.reason,
        risk_flag=fresh.risk_flag,
        payload=fetched.payload,
        payload_digest=payload_digest(fetched.payload),
        updated_at=now,
    )
    return "updated before its decision" if changed else "raced"


# A person's requests (the review queue's): re-read from the platform when it said they changed.
WAITING_FOR_A_PERSON = (RequestStatus.MANUAL_REVIEW, RequestStatus.FAILED)


def request_refresh(*, row: Channel, request_id: int) -> str:
    """Re-reads a request waiting for a person after the platform said it changed or ended
    (a review found it so): ATOM's copy takes the fresh data with a new version (a person who
    saw the old one is asked to look again), or leaves the queue as ``done_elsewhere`` /
    ``superseded``. Reads only; a platform that does not answer leaves it as it is."""
    request = AfterSaleRequest.objects.filter(pk=request_id).only("pk", "aftersale_id").first()
    if request is None:
        return "gone"
    try:
        fetched = channel_fetch(row, request.aftersale_id)
    except ChannelUnavailable as exc:
        logger.warning("request %s not re-read: %s", request_id, exc)
        return "unavailable"
    now = timezone.now()
    waiting = AfterSaleRequest.objects.filter(pk=request_id, status__in=WAITING_FOR_A_PERSON)
    if fetched.snapshot.done:
        moved = waiting.update(status=RequestStatus.DONE_ELSEWHERE, updated_at=now)
        return "handled elsewhere" if moved else "raced"
    if not fetched.snapshot.awaiting_seller or fetched.request is None:
        moved = waiting.update(status=RequestStatus.SUPERSEDED, updated_at=now)
        return "superseded" if moved else "raced"
    fresh = fetched.request
    changed = waiting.update(
        amount=fresh.amount,
        type=fresh.type,
        reason=fresh.reason,
        risk_flag=fresh.risk_flag,
        payload=fetched.payload,
        payload_digest=payload_digest(fetched.payload),
        platform_deadline=fresh.deadline,
        updated_at=now,
    )
    return "re-read" if changed else "raced"


def _move(request: AfterSaleRequest, source: str | None, target: str, now: dt.datetime) -> bool:
    return bool(
        AfterSaleRequest.objects.filter(
            pk=request.pk, status=source or RequestStatus.RECEIVED
        ).update(status=target, updated_at=now)
    )


def channel_fetch(row: Channel, aftersale_id: str) -> Fetched:
    """Reads one request from the platform; ``ChannelUnavailable`` (noted on the health panel)
    when the platform did not answer."""
    try:
        return adapter_for(row, deadline=READ_DEADLINE).fetch(aftersale_id)
    except CALL_ERRORS as exc:
        channel_note_error(row=row, error=str(exc), auth=is_auth_error(exc))
        raise ChannelUnavailable(str(exc)) from exc


def channel_note_error(*, row: Channel, error: str, auth: bool = False) -> None:
    """Shows ``error`` on the channel's health panel; an authentication refusal asks for one
    token refresh (the refresh alerts if that is refused too)."""
    now = timezone.now()
    Channel.objects.filter(pk=row.pk).update(last_error=error[:2000], last_error_at=now)
    if auth and row.platform in REFRESHED:
        with transaction.atomic():
            publish_on_commit(REFRESH_CHANNEL_TASK, row.pk, 1)


# --- the poller ---------------------------------------------------------------------------------


def poll_period(platform: str) -> dt.timedelta:
    seconds = (
        settings.KUAISHOU_POLL_SECONDS
        if platform == Platform.KUAISHOU
        else settings.DOUYIN_POLL_SECONDS
    )
    return dt.timedelta(seconds=seconds)


def channels_poll_due(*, now: dt.datetime | None = None) -> list[int]:
    """Queues a poll of every connected channel whose period has passed; their ids."""
    now = now or timezone.now()
    due = []
    for pk, platform, last in Channel.objects.filter(platform__in=CONNECTED).values_list(
        "pk", "platform", "last_poll_at"
    ):
        if last is None or now - last >= poll_period(platform) - dt.timedelta(seconds=5):
            due.append(pk)
    with transaction.atomic():
        for pk in due:
            publish_on_commit(POLL_CHANNEL_TASK, pk)
    return due


@dataclass(frozen=True)
class PollOutcome:
    seen: int
    synced: dict[str, str]
    calls: int


def channel_poll(*, channel_id: int, now: dt.datetime | None = None) -> PollOutcome:
    """Lists what changed on the platform since the high-water mark (minus a margin) and syncs
    every refund not yet stored, or stored and still in flight. Raises ``ChannelUnavailable``."""
    now = now or timezone.now()
    row = Channel.objects.select_related("shop").get(pk=channel_id)
    if row.platform not in CONNECTED:
        return PollOutcome(0, {}, 0)
    since = (row.poll_high_water or now - POLL_FIRST_WINDOW) - POLL_MARGIN
    try:
        result = adapter_for(row, deadline=READ_DEADLINE).poll(since=since, until=now)
    except CALL_ERRORS as exc:
        auth = is_auth_error(exc)
        channel_note_error(row=row, error=str(exc), auth=auth)
        if not auth:
            _poll_failed(channel_id=row.pk, now=now)
        raise ChannelUnavailable(str(exc)) from exc
    ids = [refund.aftersale_id for refund in result.refunds]
    known = dict(
        AfterSaleRequest.objects.filter(shop_id=row.shop_id, aftersale_id__in=ids).values_list(
            "aftersale_id", "status"
        )
    )
    synced: dict[str, str] = {}
    for refund in result.refunds:
        status = known.get(refund.aftersale_id)
        if status is None:
            kind = PushKind.NEW
        elif status in ACTIVE:
            kind = PushKind.UPDATED
        else:
            continue  # decided and carried out (or closed): nothing a poll changes
        synced[refund.aftersale_id] = aftersale_sync(
            row=row, aftersale_id=refund.aftersale_id, kind=kind
        )
    updates: dict[str, Any] = {"last_poll_at": now, "poll_failures": 0, "poll_alerted_at": None}
    if result.high_water is not None and (
        row.poll_high_water is None or result.high_water > row.poll_high_water
    ):
        updates["poll_high_water"] = result.high_water
    Channel.objects.filter(pk=row.pk).update(**updates)
    return PollOutcome(seen=len(result.refunds), synced=synced, calls=result.calls)


def _poll_failed(*, channel_id: int, now: dt.datetime) -> None:
    """Counts a failed poll; the ``POLL_FAILURES_ALERT``-th in a row alerts (once per outage)."""
    with transaction.atomic():
        Channel.objects.filter(pk=channel_id).update(poll_failures=models.F("poll_failures") + 1)
        if Channel.objects.filter(
            pk=channel_id, poll_failures__gte=POLL_FAILURES_ALERT, poll_alerted_at__isnull=True
        ).exists():
            _alert_once(channel_id=channel_id, kind=CHANNEL_ALERT_POLL, now=now)


# --- tokens -------------------------------------------------------------------------------------


def _refreshable() -> models.QuerySet[Channel]:
    """The channels the beat keeps a token for: a Kuaishou one with a refresh token, any
    Douyin one (a refresh token, or a self-built app's credentials)."""
    return Channel.objects.filter(
        models.Q(platform=Platform.KUAISHOU) & ~models.Q(refresh_token_sealed="")
        | models.Q(platform=Platform.DOUYIN)
    )


def channels_refresh_due(*, now: dt.datetime | None = None) -> list[int]:
    """Queues a refresh of every Kuaishou and Douyin channel whose access token expires soon,
    and raises the alert of a refresh token about to die (once); the channels queued."""
    now = now or timezone.now()
    rows = _refreshable()
    due = list(
        rows.filter(access_expires_at__lte=now + REFRESH_AHEAD)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    with transaction.atomic():
        for pk in due:
            publish_on_commit(REFRESH_CHANNEL_TASK, pk, 0)
        for platform, ahead in REFRESH_TOKEN_ALERT_AHEAD_BY_PLATFORM.items():
            for pk in (
                rows.filter(
                    platform=platform,
                    refresh_expires_at__lte=now + ahead,
                    refresh_expiry_alerted_at__isnull=True,
                )
                .exclude(refresh_token_sealed="")
                .values_list("pk", flat=True)
            ):
                _alert_once(channel_id=pk, kind=CHANNEL_ALERT_EXPIRING, now=now)
    return due


# The Channel field each alert kind claims.
ALERT_CLAIMS = {
    CHANNEL_ALERT_AUTH: "auth_alerted_at",
    CHANNEL_ALERT_EXPIRING: "refresh_expiry_alerted_at",
    CHANNEL_ALERT_PUSH: "push_alerted_at",
    CHANNEL_ALERT_POLL: "poll_alerted_at",
}


def _alert_once(*, channel_id: int, kind: int, now: dt.datetime) -> bool:
    """Claims the alert by a conditional update of its timestamp: one caller wins, ever (until
    a new authorisation clears it); the notifications app raises it after COMMIT."""
    field = ALERT_CLAIMS[kind]
    claimed = Channel.objects.filter(pk=channel_id, **{f"{field}__isnull": True}).update(
        **{field: now}
    )
    if claimed:
        publish_on_commit(CHANNEL_ALERT_TASK, channel_id, kind)
    return bool(claimed)


def channel_token_refresh(
    *, channel_id: int, now: dt.datetime | None = None, force: bool = False
) -> str:
    """Refreshes the channel's token pair if it expires soon (``force``: an authentication
    failure asked, unless another refresh happened since). One at a time per channel: the row
    lock is held across the platform call, so a concurrent caller waits, then finds the new
    pair and does nothing. What it did: "refreshed", "fresh", "refused", "error", "none"."""
    started = now or timezone.now()
    with transaction.atomic():
        row = Channel.objects.select_for_update().filter(pk=channel_id).first()
        if row is None or row.platform not in REFRESHED:
            return "none"
        self_built = row.platform == Platform.DOUYIN and not row.refresh_token_sealed
        if not row.refresh_token_sealed and not self_built:
            return "none"
        if row.last_refresh_at is not None and row.last_refresh_at >= started - dt.timedelta(
            seconds=30
        ):
            return "fresh"  # refreshed while this caller waited for the lock
        expiring = row.access_expires_at is None or row.access_expires_at <= started + REFRESH_AHEAD
        if not force and not expiring:
            return "fresh"
        adapter = adapter_for(row, deadline=READ_DEADLINE)
        try:
            if self_built:
                assert isinstance(adapter, DouyinChannel)
                grant = adapter.token(now=started)
            else:
                grant = adapter.refresh(refresh_token=row.secret("refresh_token"), now=started)
        except TokenRefused as exc:
            now_ = timezone.now()
            Channel.objects.filter(pk=row.pk).update(
                auth_failed_at=now_,
                last_error=f"token {exc.message}"[:2000],
                last_error_at=now_,
            )
            _alert_once(channel_id=row.pk, kind=CHANNEL_ALERT_AUTH, now=now_)
            logger.error("channel %s: token refresh refused (%s)", row.pk, exc.code)
            return "refused"
        except CALL_ERRORS as exc:
            Channel.objects.filter(pk=row.pk).update(
                last_error=f"token refresh failed: {exc}"[:2000], last_error_at=timezone.now()
            )
            return "error"
        row.set_secret("access_token", grant.access_token)
        row.set_secret("refresh_token", grant.refresh_token)
        row.access_expires_at = grant.expires_at
        if grant.refresh_expires_at is not None:
            row.refresh_expires_at = grant.refresh_expires_at
        if grant.merchant and not row.merchant_id:
            row.merchant_id = grant.merchant
        row.last_refresh_at = timezone.now()
        row.auth_failed_at = None
        row.save()
    logger.info("channel %s: token pair refreshed (%s)", channel_id, row.access_token_hint)
    return "refreshed"
