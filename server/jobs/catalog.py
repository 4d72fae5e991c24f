"""Every piece of background work of an instance, declared in one place: the event subscribers, the
queue workers and the periodic jobs."""

from __future__ import annotations

from functools import partial

from server.jobs.invalidations import POLL_SECONDS, Invalidations
from server.jobs.nodes import LEASE_SECONDS, NodeLease
from server.jobs.outbox import Outbox
from server.jobs.runtime import Consumer, Periodic
from server.services import (
    audit,
    conversations,
    feeds,
    groups,
    media,
    notify,
    polls,
    push,
    reactions,
    retention,
    scheduled,
)
from server.services.federation import groups as group_federation
from server.services.federation.outbound import ActivityPubOutbound
from server.state import State
from server.workers.push import PushWorker

HOURLY = 3600.0
# What `serve --no-workers` leaves to `crosstalk worker` processes. Every process still dispatches the
# events it records (the fastest path to streams), renews its id node and hears invalidations.
BACKGROUND_JOBS = ("delivery", "inbox", "push", "scheduled-statuses", "poll-endings", "media-cleanup",
                   "boundary-log-retention", "delivery-retention", "event-retention", "invalidation-retention",
                   "audit-log-retention")


def subscribe(state: State, outbox: Outbox) -> None:
    """Subscribers of domain events. Notifications, and the Web Push deliveries they cause, are made
    inside the recording transaction; after the commit, in this order: feeds (and the streams that
    announce them), the notifications' streams, conversations, then delivery to other servers."""
    outbox.subscribe_in_transaction("notifications", notify.create_for_events)
    outbox.subscribe_in_transaction("reaction-notifications", reactions.notify_in_tx)
    outbox.subscribe_in_transaction("group-request-notifications", groups.notify_moderators_in_tx)
    outbox.subscribe_in_transaction("push", partial(push.enqueue_for_events, state))
    outbox.subscribe_batch("feeds", partial(feeds.on_events, state))
    outbox.subscribe_batch("notifications", partial(notify.on_events, state))
    outbox.subscribe("conversations", partial(conversations.on_event, state))
    outbox.subscribe("groups", partial(groups.on_event, state))


def declare(state: State, outbox: Outbox, node_lease: NodeLease, invalidations: Invalidations) -> None:
    jobs, settings = state.jobs, state.settings
    jobs.declare(Consumer("outbox", outbox))
    jobs.declare(Consumer("push", PushWorker(state)))
    jobs.declare(Periodic("id-node-lease", LEASE_SECONDS / 4, node_lease.renew, cluster_once=False))
    jobs.declare(Periodic("invalidations", POLL_SECONDS, invalidations.poll, cluster_once=False))
    jobs.declare(Periodic("invalidation-retention", HOURLY, invalidations.prune))
    jobs.declare(Periodic("scheduled-statuses", settings.scheduler.interval, partial(scheduled.publish_due, state)))
    jobs.declare(Periodic("poll-endings", settings.scheduler.interval, partial(polls.notify_ended, state)))
    # An upload outlives its time to live by at most a quarter of it (and at most an hour).
    media_every = max(1.0, min(HOURLY, settings.media.unattached_ttl / 4))
    jobs.declare(Periodic("media-cleanup", media_every, partial(media.purge_expired, state)))
    jobs.declare(Periodic("boundary-log-retention", HOURLY, partial(retention.prune_boundary_log, state)))
    jobs.declare(Periodic("delivery-retention", HOURLY, partial(retention.prune_deliveries, state)))
    jobs.declare(Periodic("event-retention", HOURLY, partial(retention.prune_events, state)))
    jobs.declare(Periodic("audit-log-retention", HOURLY, partial(audit.prune, state)))


def declare_federation(state: State, outbox: Outbox, outbound: ActivityPubOutbound) -> None:
    """Delivery to and from other servers (the serving process installs federation first)."""
    outbox.subscribe("federation", outbound.on_event)
    outbox.subscribe("group-federation", partial(group_federation.on_event, state))
    outbox.subscribe("reaction-federation", partial(reactions.on_event, state))
    state.jobs.declare(Consumer("delivery", state.delivery_worker))
    state.jobs.declare(Consumer("inbox", state.inbox_worker))
