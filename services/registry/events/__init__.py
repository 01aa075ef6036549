"""Events nobody loses: an outbox written with each content change, delivered at least once.

How an event travels:

1. A content change (manifest pushed, tag or manifest deleted, repository
   created, repository emptied by the garbage collector) writes one row in
   the ``events`` table inside the very transaction that makes the change
   (``recorder``, ``metadata.outbox``). Either both commit or neither does:
   no change without its event, no event for a change that rolled back.
2. A dispatcher (``dispatcher``; one task in every registry process, or
   ``ecloud-registry events deliver``) claims due events with a lease row
   (``lease_holder``, ``lease_expires_at``) so that one process at a time
   works on an event across replicas, and delivers it to every target:
   NATS JetStream (``nats``), the operator's webhooks and the webhooks of the
   repository owner (``webhooks``). Each target's outcome is kept per event,
   so a retry only repeats what failed.
3. A failed delivery is retried with exponential backoff and jitter until
   the event is older than the maximum age; then the target is marked
   failed. A process killed mid-delivery stops renewing nothing: its lease
   simply expires and another process delivers again. That is why delivery
   is at least once, and why every payload carries the event id (also the
   JetStream ``Nats-Msg-Id``) for de-duplication.

Payloads (``formats``): CloudEvents 1.0 structured JSON (webhooks and NATS)
or distribution's notification envelope (webhooks that ask for it).
Signatures (``signing``): ``Ecloud-Signature: t=<unix>,v1=<hex HMAC-SHA256>``.
"""
