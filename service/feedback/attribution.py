"""Attribution: which impression an event answers.

An event that names a ``request_id`` answers that impression, if the log still holds it, it
was shown to this user and it showed the item. Without one, it answers the user's latest
impression that showed the item. Either way only within the window: the impression at most
``window_s`` before the event (and not after it). An event no impression explains stays a
plain event (history, popularity), unattributed.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.feedback.events import is_negative
from service.feedback.records import Feedback, Impression
from service.state import Event, StateStore

RECENT_IMPRESSIONS = 100  # the user's latest impressions searched for an event's item


def attribute(
    store: StateStore,
    user_id: str,
    events: Sequence[Event],
    request_ids: Sequence[str | None],
    window_s: float,
    unwritten: Sequence[Impression] = (),
) -> list[Feedback]:
    """The attributed ones of ``events`` (``request_ids`` in step with them); ``unwritten``
    are the user's impressions still in the writer's buffer, newest first."""
    if not events:
        return []
    since = min(e.ts for e in events) - window_s
    recent = [*unwritten, *store.recent_impressions(user_id, since, RECENT_IMPRESSIONS)]
    out = []
    for event, request_id in zip(events, request_ids, strict=True):
        shown = _impression_of(store, user_id, event, request_id, recent)
        if shown is not None and event.ts - window_s <= shown.ts <= event.ts:
            out.append(_feedback(shown, event))
    return out


def _impression_of(
    store: StateStore,
    user_id: str,
    event: Event,
    request_id: str | None,
    recent: list[Impression],
) -> Impression | None:
    if request_id is None:
        return next((i for i in recent if i.ts <= event.ts and i.position_of(event.item_id)), None)
    named = next((i for i in recent if i.request_id == request_id), None)
    named = named or store.impression(request_id)
    if named is None or named.user_id != user_id or not named.position_of(event.item_id):
        return None
    return named


def _feedback(shown: Impression, event: Event) -> Feedback:
    return Feedback(
        request_id=shown.request_id,
        user_id=shown.user_id,
        item_id=event.item_id,
        type=event.type,
        weight=event.weight,
        ts=event.ts,
        positive=not is_negative(event.type),
        position=shown.position_of(event.item_id) or 0,
        model_version=shown.model_version,
        variant=shown.variant,
    )
