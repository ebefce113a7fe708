"""Recurring silences over HTTP, always in the caller's organisation (notify/schedules.py, schedule_store.py).

- ``GET /api/v1/silence_schedules``: the organisation's schedules, each with its next ``windows``
  (the running one first, if any).
- ``POST /api/v1/silence_schedules``: create from ``{"matchers": [{name, value, isRegex, isEqual}],
  "weekdays": ["sunday"], "startTime": "02:00", "endTime": "04:00", "timeZone": "Europe/Berlin",
  "comment"}`` (an end at or before the start ends on the next day); ``createdBy`` is the caller.
  The running or next window's silence is created at once (an ordinary silence, ``/api/v2/silences``).
- ``DELETE /api/v1/silence_schedules/{id}``: delete; its running and pending silences are expired.

Reads need ``metrics:read``, changes ``silences:manage`` (auth/route_permissions.py). Bad input is a
400 naming the field and writes nothing; a body other than JSON is 415; another organisation's
schedule is 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clearsight.api.auth_routes import guarded, json_body, principal_of
from clearsight.api.common import success
from clearsight.api.stored import hex_id, in_thread
from clearsight.auth.errors import InvalidInput, NotFound
from clearsight.notify.notifier import Notifier
from clearsight.notify.schedule_store import ScheduleLimit, ScheduleNotFound, ScheduleStore
from clearsight.notify.schedules import parse_schedule
from clearsight.notify.silences import SilenceError

_ERRORS = {ScheduleNotFound: NotFound, ScheduleLimit: InvalidInput}


async def _run(fn: Callable[..., Any], *args: Any) -> Any:
    return await in_thread(fn, *args, errors=_ERRORS)


def _id(request: Request) -> str:
    return hex_id(request, "recurring silence")


def make_silence_schedule_routes(store: ScheduleStore, notifier: Notifier) -> list[Route]:
    async def list_schedules(request: Request) -> Response:
        p = principal_of(request)
        now = notifier.clock.now()
        return success([s.json(now) for s in await _run(store.of_org, p.org)])

    async def create_schedule(request: Request) -> Response:
        p = principal_of(request)
        body = await json_body(request)
        try:
            parsed = parse_schedule(body)
        except SilenceError as e:
            raise InvalidInput(str(e)) from None
        made = await _run(store.create, p.org, parsed, p.name)
        await notifier.sync_schedules()
        return success(made.json(notifier.clock.now()))

    async def delete_schedule(request: Request) -> Response:
        p = principal_of(request)
        await _run(store.delete, p.org, _id(request))
        await notifier.sync_schedules()
        return success(None)

    path = "/api/v1/silence_schedules"
    return [
        Route(path, guarded(list_schedules), methods=["GET"], name="silence_schedules_list"),
        Route(path, guarded(create_schedule), methods=["POST"], name="silence_schedules_create"),
        Route(f"{path}/{{id}}", guarded(delete_schedule), methods=["DELETE"], name="silence_schedules_delete"),
    ]
