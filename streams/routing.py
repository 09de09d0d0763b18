"""Which key and topic each upstream event is published under."""

from __future__ import annotations

from processors.events import (
    CustomerChanged,
    Event,
    OrderCancelled,
    OrderPlaced,
    PaymentReceived,
    PeriodClosed,
    PlanPublished,
    RefundIssued,
    RepChanged,
    event_type,
)

from .settings import Topics


def event_key(event: Event) -> bytes:
    """The Kafka key: the entity the event is about. Plan versions are keyed
    ``plan_id@version`` so that compaction keeps every version."""
    match event:
        case OrderPlaced() | OrderCancelled() | PaymentReceived() | RefundIssued():
            key = event.order_id
        case CustomerChanged():
            key = event.customer_id
        case RepChanged():
            key = event.rep_id
        case PlanPublished():
            key = f"{event.plan_id}@{event.version}"
        case PeriodClosed():
            key = event.period
    return key.encode()


def event_topic(event: Event, topics: Topics) -> str:
    """The upstream topic an event belongs on."""
    return topics.by_event_type()[event_type(event)]
