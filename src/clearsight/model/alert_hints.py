"""Per-alert notification settings carried as annotations.

GoSight-style simple rules set them (``repeat_interval``, ``notify_on_resolve``); the built-in
notifier honours them for that alert over the route's ``repeat_interval`` and the receiver's
``send_resolved``. They are ordinary annotations, so they travel in API v2 alerts and are ignored
by an external Alertmanager. ``rules/`` and ``notify/`` share only these names.
"""

from __future__ import annotations

# A Prometheus duration ("30m", "4h"): re-notify while firing at this interval.
REPEAT_INTERVAL = "clearsight_repeat_interval"
# "true" or "false": notify (or not) when this alert resolves.
NOTIFY_ON_RESOLVE = "clearsight_notify_on_resolve"
