import { useEffect, useMemo, useState } from 'preact/hooks';
import { promGet, sendJSON } from '../api';
import { Chart } from '../components/Chart';
import { Time } from '../components/Time';
import { formatNumber, formatValue } from '../format';

interface AuditEntry {
  id: number;
  ts_ms: number;
  actor: string;
  action: string;
  target: string;
  outcome: 'success' | 'failure';
  source_ip: string;
  trace_id: string;
  detail: Record<string, unknown>;
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** The organisation's audit log (`GET /api/v1/audit`, audit:read): newest first, filtered by actor, action
 * and outcome. */
export function AuditLog() {
  const [rows, setRows] = useState<AuditEntry[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [filters, setFilters] = useState({ actor: '', action: '', outcome: '' });
  const [applied, setApplied] = useState(filters);
  useEffect(() => {
    const ctl = new AbortController();
    setError(null);
    promGet<AuditEntry[]>(
      '/api/v1/audit',
      { limit: 200, actor: applied.actor || undefined, action: applied.action || undefined, outcome: applied.outcome || undefined },
      ctl.signal,
    )
      .then((r) => setRows([...r].sort((a, b) => b.ts_ms - a.ts_ms || b.id - a.id)))
      .catch((e: unknown) => {
        if (!ctl.signal.aborted) setError(message(e));
      });
    return () => ctl.abort();
  }, [applied]);
  return (
    <section class="card" aria-labelledby="audit-title">
      <h2 id="audit-title">Audit log</h2>
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(filters);
        }}
      >
        <label>
          Actor
          <input value={filters.actor} onInput={(e) => setFilters({ ...filters, actor: e.currentTarget.value })} placeholder="admin" />
        </label>
        <label>
          Action
          <input value={filters.action} onInput={(e) => setFilters({ ...filters, action: e.currentTarget.value })} placeholder="apikey.create" />
        </label>
        <label>
          Outcome
          <select value={filters.outcome} onChange={(e) => setFilters({ ...filters, outcome: e.currentTarget.value })}>
            <option value="">any</option>
            <option value="success">success</option>
            <option value="failure">failure</option>
          </select>
        </label>
        <button type="submit" class="btn">
          Apply
        </button>
      </form>
      {error ? (
        <p role="alert" class="error">
          {error}
        </p>
      ) : rows === null ? (
        <p role="status">Loading…</p>
      ) : rows.length === 0 ? (
        <p class="empty">No audit entry matches. Sign-ins, key, user, role, rule and silence changes are recorded here.</p>
      ) : (
        <table class="table" data-testid="audit">
          <caption class="sr-only">Audit entries, newest first (at most 200)</caption>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Actor</th>
              <th scope="col">Action</th>
              <th scope="col">Target</th>
              <th scope="col">Outcome</th>
              <th scope="col">Source</th>
              <th scope="col">Detail</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.id} data-action={r.action}>
                <td class="nowrap">
                  <Time ms={r.ts_ms} />
                </td>
                <td>{r.actor}</td>
                <td class="mono small">{r.action}</td>
                <td class="mono small">{r.target}</td>
                <td class={r.outcome === 'failure' ? 'error' : ''}>
                  <span aria-hidden="true">{r.outcome === 'failure' ? '✖ ' : '✔ '}</span>
                  {r.outcome}
                </td>
                <td class="small">{r.source_ip}</td>
                <td class="mono small">{Object.keys(r.detail).length ? JSON.stringify(r.detail) : ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

type Kind = 'samples' | 'log_lines' | 'log_bytes' | 'queries' | 'events' | 'rum_events' | 'spans' | 'active_series';
interface Cost { samples: number; logs: number; queries: number; spans: number; total: number }
interface UsageDoc {
  org: string;
  daily: { date: string; counts: Record<Kind, number>; cost: Cost }[];
  monthly: { month: string; counts: Record<Kind, number>; cost: Cost }[];
  quotas: { samples_per_day: number | null; log_bytes_per_day: number | null; spans_per_day: number | null };
}
const KIND_TITLE: Record<Kind, string> = {
  samples: 'Samples', log_lines: 'Log lines', log_bytes: 'Log bytes', queries: 'Read requests',
  events: 'Events', rum_events: 'RUM events', spans: 'Trace spans', active_series: 'Active series (peak)',
};

/** Usage and estimated cost per telemetry type (`GET /api/v1/usage`, org:manage): daily charts and months. */
export function UsageView() {
  const [doc, setDoc] = useState<UsageDoc | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const ctl = new AbortController();
    promGet<UsageDoc>('/api/v1/usage', {}, ctl.signal)
      .then(setDoc)
      .catch((e: unknown) => {
        if (!ctl.signal.aborted) setError(message(e));
      });
    return () => ctl.abort();
  }, []);
  // every day from the first with usage (at least the last 14) to today, days without usage as 0
  const days = useMemo(() => {
    if (!doc) return { x: [] as number[], counts: [] as Record<Kind, number>[] };
    const byDate = new Map(doc.daily.map((d) => [d.date, d.counts]));
    const today = Date.parse(`${new Date().toISOString().slice(0, 10)}T00:00:00Z`);
    const first = Math.min(today - 13 * 86400e3, ...doc.daily.map((d) => Date.parse(`${d.date}T00:00:00Z`)));
    const x: number[] = [];
    const counts: Record<Kind, number>[] = [];
    for (let t = first; t <= today; t += 86400e3) {
      x.push(t / 1000);
      counts.push(byDate.get(new Date(t).toISOString().slice(0, 10)) ?? { samples: 0, log_lines: 0, log_bytes: 0, queries: 0, events: 0, rum_events: 0, spans: 0, active_series: 0 });
    }
    return { x, counts };
  }, [doc]);
  return (
    <section class="card" aria-labelledby="usage-title">
      <h2 id="usage-title">Usage and cost</h2>
      {error ? (
        <p role="alert" class="error">
          {error}
        </p>
      ) : !doc ? (
        <p role="status">Loading…</p>
      ) : doc.daily.length === 0 ? (
        <p class="empty">No usage recorded yet for this organisation (counts are flushed every usage.flush_interval).</p>
      ) : (
        <>
          <div class="grid two">
            {(Object.keys(KIND_TITLE) as Kind[]).map((k) => (
              <Chart
                key={k}
                title={`${KIND_TITLE[k]} per day`}
                x={days.x}
                series={[{ label: KIND_TITLE[k], values: days.counts.map((c) => c[k] ?? 0) }]}
                unit={k === 'log_bytes' ? 'bytes' : ''}
                height={150}
                testId={`usage-${k}`}
              />
            ))}
          </div>
          <table class="table" data-testid="usage-months">
            <caption class="sr-only">Usage per month</caption>
            <thead>
              <tr>
                <th scope="col">Month</th>
                {(Object.keys(KIND_TITLE) as Kind[]).map((k) => (
                  <th key={k} scope="col" class="num">
                    {KIND_TITLE[k]}
                  </th>
                ))}
                <th scope="col" class="num">
                  Estimated cost
                </th>
              </tr>
            </thead>
            <tbody>
              {doc.monthly.map((m) => (
                <tr key={m.month}>
                  <td>{m.month}</td>
                  {(Object.keys(KIND_TITLE) as Kind[]).map((k) => (
                    <td key={k} class="num">
                      {k === 'log_bytes' ? formatValue(m.counts[k], 'bytes') : formatNumber(m.counts[k] ?? 0)}
                    </td>
                  ))}
                  <td class="num" title={`samples ${m.cost.samples.toFixed(2)}, logs ${m.cost.logs.toFixed(2)}, queries ${m.cost.queries.toFixed(2)}, spans ${m.cost.spans.toFixed(2)}`}>{m.cost.total.toFixed(2)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p class="muted small">
            Quotas per day: samples {doc.quotas.samples_per_day ?? 'none'}, log bytes{' '}
            {doc.quotas.log_bytes_per_day === null ? 'none' : formatValue(doc.quotas.log_bytes_per_day, 'bytes')}, spans{' '}
            {doc.quotas.spans_per_day ?? 'none'}. Prices are set with{' '}
            <code>usage.price_per_*</code>.
          </p>
        </>
      )}
    </section>
  );
}

interface Org { id: number; name: string; created_ms: number }

/** Organisations of the server (orgs:cross, a superadmin): list, create, delete (not the default one nor
 * the caller's own: the API refuses those). */
export function Organisations({ current }: { current: string }) {
  const [orgs, setOrgs] = useState<Org[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [name, setName] = useState('');
  const [reload, setReload] = useState(0);
  useEffect(() => {
    promGet<Org[]>('/api/v1/admin/orgs')
      .then(setOrgs)
      .catch((e: unknown) => setError(message(e)));
  }, [reload]);
  const run = (f: () => Promise<unknown>) => {
    setError(null);
    f()
      .then(() => setReload((n) => n + 1))
      .catch((e: unknown) => setError(message(e)));
  };
  return (
    <section class="card" aria-labelledby="orgs-title">
      <h2 id="orgs-title">Organisations</h2>
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          run(async () => {
            await sendJSON('POST', '/api/v1/admin/orgs', { name: name.trim() });
            setName('');
          });
        }}
      >
        <label>
          New organisation name
          <input required value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="team-payments" />
        </label>
        <button type="submit" class="btn primary">
          Create organisation
        </button>
      </form>
      <p class="muted small">
        An organisation is a tenant: its data, users, keys, rules and dashboards are its own. Act in one with the{' '}
        <code>X-Scope-OrgID</code> header (API) or by signing in as one of its users.
      </p>
      {error ? (
        <p role="alert" class="error">
          {error}
        </p>
      ) : null}
      {orgs === null ? (
        error ? null : <p role="status">Loading…</p>
      ) : (
        <table class="table" data-testid="orgs">
          <caption class="sr-only">Organisations</caption>
          <thead>
            <tr>
              <th scope="col">Organisation</th>
              <th scope="col">Created</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {orgs.map((o) => (
              <tr key={o.id} data-org={o.name}>
                <td>
                  {o.name} {o.name === current ? <span class="muted small">(this one)</span> : null}
                </td>
                <td>
                  <Time ms={o.created_ms} />
                </td>
                <td>
                  {o.name === current ? null : (
                    <button
                      type="button"
                      class="btn"
                      aria-label={`Delete organisation ${o.name}`}
                      onClick={() => {
                        if (confirm(`Delete the organisation ${o.name} with its users, keys and settings?`))
                          run(() => sendJSON('DELETE', `/api/v1/admin/orgs/${encodeURIComponent(o.name)}`));
                      }}
                    >
                      Delete
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
