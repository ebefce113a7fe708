import { Fragment } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { promGet, type Metric } from '../api';
import { QueryChart } from '../components/QueryChart';
import { HealthBadge, LivenessBadge } from '../components/Status';
import { Time } from '../components/Time';
import type { Unit } from '../format';
import {
  healthOf,
  listResources,
  MAX_HEALTH,
  resourceHealth,
  resourceIdOf,
  resourcePath,
  type Health,
  type Resource,
} from '../resources';
import { usePolled } from '../polled';
import { linkClick, useLocation } from '../router';

const REFRESH_MS = 15_000;
const LAST_HOUR = { range: 3600_000, end: null };

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Host and container explorer (`/ui/infrastructure`) and a resource's page (`/ui/infrastructure/<id>`). */
export function InfrastructurePage() {
  const loc = useLocation();
  const id = resourceIdOf(loc.pathname);
  return id ? <ResourcePage key={id} id={id} /> : <ResourceList />;
}

const NO_HEALTH = new Map<string, Health>();

export function useFleet(): { resources: Resource[] | null; health: Map<string, Health>; error: string | null; at: number } {
  const { value, error, at } = usePolled(async (signal) => {
    const resources = await listResources(signal);
    return { resources, health: await healthOf(resources, signal) };
  }, REFRESH_MS);
  return { resources: value?.resources ?? null, health: value?.health ?? NO_HEALTH, error, at };
}

const KINDS = ['host', 'container', 'service'] as const;

function ResourceList() {
  const { resources, health, error, at } = useFleet();
  const [kind, setKind] = useState<string>('');
  const [text, setText] = useState('');
  const shown = useMemo(() => {
    const t = text.trim().toLowerCase();
    return (resources ?? []).filter(
      (r) =>
        (!kind || r.kind === kind) &&
        (!t || r.id.toLowerCase().includes(t) || r.name.toLowerCase().includes(t) || Object.entries(r.tags).some(([k, v]) => `${k}=${v}`.toLowerCase().includes(t))),
    );
  }, [resources, kind, text]);
  const children = useMemo(() => {
    const m = new Map<string, number>();
    for (const r of resources ?? []) if (r.parent) m.set(r.parent, (m.get(r.parent) ?? 0) + 1);
    return m;
  }, [resources]);

  return (
    <section aria-labelledby="infra-title">
      <div class="page-head">
        <h1 id="infra-title">Infrastructure</h1>
        {at ? (
          <p class="muted small">
            Updated <Time ms={at} /> (every {REFRESH_MS / 1000} s)
          </p>
        ) : null}
      </div>
      <form class="card toolbar" onSubmit={(e) => e.preventDefault()}>
        <label>
          Kind
          <select value={kind} onChange={(e) => setKind(e.currentTarget.value)}>
            <option value="">All kinds</option>
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {k}s
              </option>
            ))}
          </select>
        </label>
        <label class="grow">
          Filter by name, id or tag
          <input value={text} placeholder="web-1, env=prod" onInput={(e) => setText(e.currentTarget.value)} />
        </label>
      </form>
      {error ? (
        <p role="alert" class="error">
          Cannot load the resources: {error}
        </p>
      ) : null}
      <section class="card" aria-label="Resources">
        {resources === null ? (
          error ? null : <p role="status">Loading…</p>
        ) : resources.length === 0 ? (
          <p class="empty">
            No hosts, containers or services are known yet. Run the agent (<code>clearsight agent</code>) on a host, or send
            node_exporter metrics by remote write: hosts appear at the next discovery (<code>resources.discovery_interval</code>).
          </p>
        ) : shown.length === 0 ? (
          <p class="empty">No resource matches these filters. Clear the filter or pick another kind.</p>
        ) : (
          <table class="table" data-testid="resources">
            <caption class="sr-only">Resources</caption>
            <thead>
              <tr>
                <th scope="col">Resource</th>
                <th scope="col">Kind</th>
                <th scope="col">Status</th>
                <th scope="col">Health</th>
                <th scope="col">Last seen</th>
                <th scope="col">Agent</th>
                <th scope="col">Details</th>
                <th scope="col">Tags</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((r) => {
                const h = health.get(r.id);
                return (
                  <tr key={r.id} data-resource={r.id}>
                    <td>
                      <a href={resourcePath(r.id)} onClick={linkClick}>
                        {r.name}
                      </a>
                    </td>
                    <td>{r.kind}</td>
                    <td>
                      <LivenessBadge status={r.status} />
                    </td>
                    <td>
                      <HealthBadge status={h?.status ?? 'unknown'} reason={h?.reason} />
                      <div class="muted small">{h?.reason ?? ''}</div>
                    </td>
                    <td class="nowrap">
                      <Time ms={r.last_seen * 1000} />
                    </td>
                    <td>{r.agent_version ?? '–'}</td>
                    <td class="small">
                      {r.kind === 'host'
                        ? [r.os, children.get(r.id) ? `${children.get(r.id)} containers` : null].filter(Boolean).join(' · ') || '–'
                        : r.kind === 'container'
                          ? [r.image, r.state].filter(Boolean).join(' · ') || '–'
                          : r.sources.join(', ')}
                    </td>
                    <td class="mono small">
                      {Object.entries(r.tags)
                        .map(([k, v]) => `${k}=${v}`)
                        .join(', ')}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
        {resources && resources.length > MAX_HEALTH ? (
          <p class="muted small">Health is shown for the first {MAX_HEALTH} resources only.</p>
        ) : null}
      </section>
    </section>
  );
}

/** A PromQL label matcher value matching any of `values` exactly (regex-escaped). */
function anyOf(values: string[]): string {
  const esc = values.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return JSON.stringify(esc.join('|'));
}

interface View {
  key: string;
  title: string;
  query: string;
  unit: Unit;
}

/** The metric detail views of a resource (node_exporter names for hosts, the agent's for containers). */
function metricViews(r: Resource): View[] {
  if (r.kind === 'host') {
    const sel = `instance=~${anyOf(r.instances.length ? r.instances : [r.name])}`;
    return [
      { key: 'cpu', title: 'CPU busy', unit: 'percent', query: `100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle",${sel}}[2m])))` },
      { key: 'memory', title: 'Memory used', unit: 'percent', query: `100 * (1 - node_memory_MemAvailable_bytes{${sel}} / node_memory_MemTotal_bytes{${sel}})` },
      { key: 'disk', title: 'Filesystems used', unit: 'percent', query: `100 * (1 - node_filesystem_avail_bytes{${sel},fstype!~"tmpfs|overlay|squashfs"} / (node_filesystem_size_bytes{${sel},fstype!~"tmpfs|overlay|squashfs"} > 0))` },
      { key: 'network', title: 'Network received', unit: 'bytes_per_second', query: `sum by (device) (rate(node_network_receive_bytes_total{${sel},device!="lo"}[2m]))` },
      { key: 'network_tx', title: 'Network sent', unit: 'bytes_per_second', query: `sum by (device) (rate(node_network_transmit_bytes_total{${sel},device!="lo"}[2m]))` },
    ];
  }
  if (r.kind === 'container') {
    const sel = `id=${JSON.stringify(r.id.slice('container:'.length))}`;
    return [
      { key: 'cpu', title: 'CPU (cores)', unit: '', query: `rate(container_cpu_usage_seconds_total{${sel}}[2m])` },
      { key: 'memory', title: 'Memory', unit: 'bytes', query: `container_memory_usage_bytes{${sel}}` },
      { key: 'restarts', title: 'Restarts', unit: '', query: `clearsight_container_restarts_total{${sel}}` },
    ];
  }
  return [{ key: 'up', title: 'Targets up', unit: '', query: `up{job=${JSON.stringify(r.name)}}` }];
}

/** An expandable metric view: the chart is queried only once it is opened. */
function MetricView({ view }: { view: View }) {
  const [open, setOpen] = useState(false);
  return (
    <details class="metric-view" onToggle={(e) => setOpen((e.currentTarget as HTMLDetailsElement).open)} data-testid={`view-${view.key}`}>
      <summary>{view.title}</summary>
      {open ? (
        <>
          <QueryChart title={view.title} query={view.query} range={LAST_HOUR} unit={view.unit} label={(m: Metric) => labelOf(m)} />
          <p class="muted small">
            Last hour · <code>{view.query}</code>
          </p>
        </>
      ) : null}
    </details>
  );
}

function labelOf(m: Metric): string {
  const parts = Object.entries(m).filter(([k]) => k !== '__name__' && k !== 'job');
  return parts.length ? parts.map(([k, v]) => `${k}=${v}`).join(', ') : m.__name__ ?? 'value';
}

interface Transition {
  time: number;
  status: string;
  previous?: string;
  reason?: string;
}

function ResourcePage({ id }: { id: string }) {
  const [res, setRes] = useState<Resource | null>(null);
  const [all, setAll] = useState<Resource[]>([]);
  const [health, setHealth] = useState<Health | null>(null);
  const [history, setHistory] = useState<{ transitions: Transition[]; uptime_percent: number | null } | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const ctl = new AbortController();
    let timer = 0;
    const load = async () => {
      try {
        const [r, list] = await Promise.all([
          promGet<Resource>(`/api/v1/resources/${encodeURIComponent(id)}`, {}, ctl.signal),
          listResources(ctl.signal),
        ]);
        setRes(r);
        setAll(list);
        setError(null);
        const [h, hist] = await Promise.all([
          resourceHealth(id, ctl.signal),
          promGet<{ transitions: Transition[]; uptime_percent: number | null }>(
            `/api/v1/resources/${encodeURIComponent(id)}/health/history`,
            { limit: 20 },
            ctl.signal,
          ),
        ]);
        setHealth(h);
        setHistory(hist);
      } catch (e) {
        if (!ctl.signal.aborted) setError(errText(e));
      }
      if (!ctl.signal.aborted) timer = window.setTimeout(load, REFRESH_MS);
    };
    void load();
    return () => {
      ctl.abort();
      clearTimeout(timer);
    };
  }, [id]);

  const children = all.filter((c) => c.parent === id);
  const views = useMemo(() => (res ? metricViews(res) : []), [res?.id, res?.instances.join(',')]);

  return (
    <section aria-labelledby="resource-title">
      <p class="small">
        <a href="/ui/infrastructure" onClick={linkClick}>
          ← All resources
        </a>
      </p>
      <div class="page-head">
        <h1 id="resource-title">
          {res ? `${res.kind === 'host' ? 'Host' : res.kind === 'container' ? 'Container' : 'Service'} ${res.name}` : id}
        </h1>
        {res ? (
          <span class="badges">
            <LivenessBadge status={res.status} /> <HealthBadge status={health?.status ?? 'unknown'} reason={health?.reason} />
          </span>
        ) : null}
      </div>
      {error ? (
        <p role="alert" class="error">
          {error.includes('not found') ? `No resource ${id} is known (it may have been forgotten after resources.forget_after).` : `Cannot load ${id}: ${error}`}
        </p>
      ) : null}
      {!res ? (
        error ? null : <p role="status">Loading…</p>
      ) : (
        <>
          <div class="grid two">
            <section class="card" aria-labelledby="about-title">
              <h2 id="about-title">About</h2>
              <dl class="facts" data-testid="facts">
                <dt>Id</dt>
                <dd class="mono">{res.id}</dd>
                {res.parent ? (
                  <>
                    <dt>Host</dt>
                    <dd>
                      <a href={resourcePath(res.parent)} onClick={linkClick}>
                        {res.parent.replace(/^host:/, '')}
                      </a>
                    </dd>
                  </>
                ) : null}
                {(
                  [
                    ['Hostname', res.hostname],
                    ['Operating system', res.os],
                    ['Kernel', res.kernel],
                    ['Agent version', res.agent_version],
                    ['Image', res.image],
                    ['State', res.state],
                    ['Sources', res.sources.join(', ')],
                    ['Metric instances', res.instances.join(', ')],
                    ['Tags', Object.entries(res.tags).map(([k, v]) => `${k}=${v}`).join(', ')],
                  ] as [string, string | null | undefined][]
                )
                  .filter(([, v]) => v)
                  .map(([k, v]) => (
                    <Fragment key={k}>
                      <dt>{k}</dt>
                      <dd>{v}</dd>
                    </Fragment>
                  ))}
                <dt>First seen</dt>
                <dd>
                  <Time ms={res.first_seen * 1000} />
                </dd>
                <dt>Last seen</dt>
                <dd>
                  <Time ms={res.last_seen * 1000} /> <span class="muted small">(expected every {res.expected_interval_seconds} s)</span>
                </dd>
              </dl>
            </section>
            <section class="card" aria-labelledby="health-title" data-testid="resource-health">
              <h2 id="health-title">Health</h2>
              {!health ? (
                <p role="status">Loading…</p>
              ) : (
                <>
                  <p>
                    <HealthBadge status={health.status} /> <span data-testid="health-reason">{health.reason}</span>
                  </p>
                  <SignalTable signals={health.signals} />
                  {history ? (
                    <p class="muted small">
                      Not critical {history.uptime_percent === null ? '(no history yet)' : `${history.uptime_percent} %`} of the last 24 h ·{' '}
                      {history.transitions.length} changes
                    </p>
                  ) : null}
                </>
              )}
            </section>
          </div>
          {res.kind === 'host' ? (
            <section class="card" aria-labelledby="containers-title">
              <h2 id="containers-title">Containers</h2>
              {children.length === 0 ? (
                <p class="empty">No containers reported by this host's agent.</p>
              ) : (
                <table class="table" data-testid="containers">
                  <caption class="sr-only">Containers on {res.name}</caption>
                  <thead>
                    <tr>
                      <th scope="col">Container</th>
                      <th scope="col">Image</th>
                      <th scope="col">State</th>
                      <th scope="col">Status</th>
                      <th scope="col">Last seen</th>
                    </tr>
                  </thead>
                  <tbody>
                    {children.map((c) => (
                      <tr key={c.id}>
                        <td>
                          <a href={resourcePath(c.id)} onClick={linkClick}>
                            {c.name}
                          </a>
                        </td>
                        <td class="mono small">{c.image ?? '–'}</td>
                        <td>{c.state ?? '–'}</td>
                        <td>
                          <LivenessBadge status={c.status} />
                        </td>
                        <td>
                          <Time ms={c.last_seen * 1000} />
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </section>
          ) : null}
          <section class="card" aria-labelledby="views-title">
            <h2 id="views-title">Metrics</h2>
            <p class="muted small">Open a view to chart it.</p>
            {views.map((v) => (
              <MetricView key={v.key} view={v} />
            ))}
          </section>
        </>
      )}
    </section>
  );
}

export function SignalTable({ signals }: { signals: Health['signals'] }) {
  if (!signals.length) return <p class="empty">No signals apply to this resource yet.</p>;
  return (
    <table class="table" data-testid="signals">
      <caption class="sr-only">Contributing signals</caption>
      <thead>
        <tr>
          <th scope="col">Signal</th>
          <th scope="col">Status</th>
          <th scope="col">Detail</th>
        </tr>
      </thead>
      <tbody>
        {signals.map((s, i) => (
          <tr key={i}>
            <td>
              {s.kind}: {s.name}
            </td>
            <td>
              <HealthBadge status={(['healthy', 'warning', 'critical'].includes(s.status) ? s.status : 'unknown') as Health['status']} />
            </td>
            <td class="small">{s.detail}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
