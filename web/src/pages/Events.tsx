import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { promGet, sendJSON } from '../api';
import { Time } from '../components/Time';
import { resourcePath } from '../resources';
import { linkClick } from '../router';

interface Event {
  id: string;
  message: string;
  level: string;
  severity: string;
  timestamp_ns: string;
  type: string;
  origin: string;
  source: string;
  group: string;
  tags: string[];
  data: Record<string, unknown>;
  resource: Record<string, string>;
}

const FALCO = 'falco_alert';
const SEV_ICON: Record<string, string> = { critical: '✖', high: '✖', medium: '▲', low: '●' };

/** An event's details: rule (Falco's group), severity, source, tags, the affected resource (a host links to
 * its page) and the data (Falco's output fields as a table). */
function EventDetail({ ev }: { ev: Event }) {
  const fields = ev.type === FALCO && ev.data.output_fields && typeof ev.data.output_fields === 'object' ? (ev.data.output_fields as Record<string, unknown>) : null;
  const rest = fields ? Object.fromEntries(Object.entries(ev.data).filter(([k]) => k !== 'output_fields')) : ev.data;
  const host = ev.resource['host.name'];
  return (
    <div class="event-detail" data-testid="event-detail">
      <dl class="facts">
        <dt>{ev.type === FALCO ? 'Rule' : 'Group'}</dt>
        <dd>{ev.group || '–'}</dd>
        <dt>Severity</dt>
        <dd>{ev.severity}</dd>
        <dt>Source</dt>
        <dd>{ev.source || '–'}</dd>
        <dt>Tags</dt>
        <dd>{ev.tags.join(', ') || '–'}</dd>
        <dt>Resource</dt>
        <dd data-testid="event-resource">
          {host ? (
            <a href={resourcePath(`host:${host}`)} onClick={linkClick}>
              host {host}
            </a>
          ) : null}{' '}
          <span class="mono small">
            {Object.entries(ev.resource)
              .filter(([k]) => k !== 'host.name')
              .map(([k, v]) => `${k}=${v}`)
              .join(', ')}
          </span>
        </dd>
        <dt>Id</dt>
        <dd class="mono small">{ev.id}</dd>
      </dl>
      {fields ? (
        <table class="table small" data-testid="output-fields">
          <caption>Output fields</caption>
          <tbody>
            {Object.entries(fields).map(([k, v]) => (
              <tr key={k}>
                <th scope="row" class="mono">{k}</th>
                <td class="mono">{typeof v === 'string' ? v : JSON.stringify(v)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {Object.keys(rest).length ? <pre class="json mono">{JSON.stringify(rest, null, 2)}</pre> : null}
    </div>
  );
}

interface Filters { type: string; level: string; origin: string; since: string }

const LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR'];
const SINCE = ['15m', '1h', '6h', '24h', '7d'];
const LIMIT = 500;

/** Events (GET /api/v1/events, newest first) with filters, and a form to log one (POST /api/v1/events). */
export function EventsPage({ mayWrite }: { mayWrite: boolean }) {
  const [filters, setFilters] = useState<Filters>({ type: '', level: '', origin: '', since: '1h' });
  const [applied, setApplied] = useState<Filters>(filters);
  const [events, setEvents] = useState<Event[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const [open, setOpen] = useState<string | null>(null);

  useEffect(() => {
    const ctl = new AbortController();
    setError(null);
    promGet<{ events: Event[] }>(
      '/api/v1/events',
      {
        type: applied.type || undefined,
        level: applied.level || undefined,
        origin: applied.origin || undefined,
        since: applied.since,
        limit: LIMIT,
        direction: 'backward',
      },
      ctl.signal,
    )
      .then((r) => setEvents(r.events))
      .catch((e: unknown) => {
        if (!ctl.signal.aborted) setError(e instanceof Error ? e.message : String(e));
      });
    return () => ctl.abort();
  }, [applied, reload]);

  const field = (k: keyof Filters) => (e: { currentTarget: HTMLInputElement | HTMLSelectElement }) =>
    setFilters({ ...filters, [k]: e.currentTarget.value });

  return (
    <section aria-labelledby="events-title">
      <h1 id="events-title">Events</h1>
      <form
        class="card toolbar"
        aria-label="Filter events"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied({ ...filters });
        }}
      >
        <label>
          Type
          <input value={filters.type} placeholder="deploy" onInput={field('type')} />
        </label>
        <label>
          Level
          <select value={filters.level} onChange={field('level')}>
            <option value="">any</option>
            {LEVELS.map((l) => (
              <option key={l} value={l}>{l}</option>
            ))}
          </select>
        </label>
        <label>
          Origin
          <input value={filters.origin} placeholder="ci" onInput={field('origin')} />
        </label>
        <label>
          Since
          <select value={filters.since} onChange={field('since')}>
            {SINCE.map((s) => (
              <option key={s} value={s}>last {s}</option>
            ))}
          </select>
        </label>
        <button type="submit" class="btn primary">Apply</button>
        <button
          type="button"
          class="btn"
          aria-pressed={applied.type === FALCO}
          onClick={() => {
            const next = { ...filters, type: applied.type === FALCO ? '' : FALCO };
            setFilters(next);
            setApplied(next);
          }}
        >
          Security events (Falco)
        </button>
      </form>
      {mayWrite ? <LogEventForm onLogged={() => setReload((n) => n + 1)} /> : null}
      {error ? <p role="alert" class="error">Cannot load events: {error}</p> : null}
      <section class="card" aria-label="Events">
        {events === null ? (
          <p role="status">Loading…</p>
        ) : events.length === 0 ? (
          <p class="empty">No events match in this range. Widen "since" or clear the filters.</p>
        ) : (
          <table class="table" data-testid="events">
            <caption class="sr-only">Events, newest first (at most {LIMIT})</caption>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Level</th>
                <th scope="col">Severity</th>
                <th scope="col">Type</th>
                <th scope="col">Origin</th>
                <th scope="col">Message</th>
              </tr>
            </thead>
            <tbody>
              {events.map((ev) => (
                <Fragment key={ev.id}>
                  <tr data-event={ev.id}>
                    <td class="nowrap">
                      <Time ms={Number(ev.timestamp_ns.slice(0, -6) || '0')} />
                    </td>
                    <td>{ev.level}</td>
                    <td class={`sev-${ev.severity}`}>
                      <span aria-hidden="true">{SEV_ICON[ev.severity] ?? ''} </span>
                      {ev.severity}
                    </td>
                    <td>{ev.type}</td>
                    <td>{ev.origin}</td>
                    <td>
                      <button type="button" class="link" aria-expanded={open === ev.id} onClick={() => setOpen(open === ev.id ? null : ev.id)}>
                        {ev.message}
                      </button>
                    </td>
                  </tr>
                  {open === ev.id ? (
                    <tr>
                      <td colSpan={6}>
                        <EventDetail ev={ev} />
                      </td>
                    </tr>
                  ) : null}
                </Fragment>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </section>
  );
}

function LogEventForm({ onLogged }: { onLogged: () => void }) {
  const [message, setMessage] = useState('');
  const [type, setType] = useState('');
  const [level, setLevel] = useState('INFO');
  const [origin, setOrigin] = useState('ui');
  const [status, setStatus] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);

  return (
    <form
      class="card toolbar"
      aria-labelledby="log-event-title"
      onSubmit={(e) => {
        e.preventDefault();
        setBusy(true);
        const body: Record<string, string> = { message, level, origin };
        if (type.trim()) body.type = type.trim();
        sendJSON<{ accepted: number; ids: string[] }>('POST', '/api/v1/events', body)
          .then(() => {
            setStatus({ ok: true, text: 'Event logged.' });
            setMessage('');
            onLogged();
          })
          .catch((err: unknown) => setStatus({ ok: false, text: err instanceof Error ? err.message : String(err) }))
          .finally(() => setBusy(false));
      }}
    >
      <h2 id="log-event-title" class="sr-only">Log an event</h2>
      <label class="grow">
        Event message
        <input class="wide" required value={message} onInput={(e) => setMessage(e.currentTarget.value)} />
      </label>
      <label>
        Event type
        <input value={type} placeholder="deploy" onInput={(e) => setType(e.currentTarget.value)} />
      </label>
      <label>
        Event level
        <select value={level} onChange={(e) => setLevel(e.currentTarget.value)}>
          {LEVELS.map((l) => (
            <option key={l} value={l}>{l}</option>
          ))}
        </select>
      </label>
      <label>
        Event origin
        <input value={origin} onInput={(e) => setOrigin(e.currentTarget.value)} />
      </label>
      <button type="submit" class="btn primary" disabled={busy}>
        Log event
      </button>
      {status ? (
        <p role={status.ok ? 'status' : 'alert'} class={status.ok ? 'small' : 'error small'}>
          {status.text}
        </p>
      ) : null}
    </form>
  );
}
