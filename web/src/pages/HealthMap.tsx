import { useMemo, useState } from 'preact/hooks';
import { CorrelationTimeline } from '../components/CorrelationTimeline';
import { HealthGraph } from '../components/HealthGraph';
import { HealthBadge } from '../components/Status';
import { Time } from '../components/Time';
import { fetchCorrelations, fetchHealthMap, healthOfNode, HOUR, nsToMs, type Correlation } from '../healthmap';
import '../healthmap.css';
import { usePolled } from '../polled';
import { resourcePath, type HealthStatus } from '../resources';
import { linkClick } from '../router';
import { SignalTable } from './Infrastructure';

const REFRESH_MS = 15_000;

function CorrelationList({ items, testid }: { items: Correlation[]; testid: string }) {
  return (
    <ol class="timeline small" data-testid={testid}>
      {items.map((c) => (
        <li key={c.id}>
          <Time ms={nsToMs(c.timestamp_ns) ?? 0} /> · {c.message}
        </li>
      ))}
    </ol>
  );
}

const RANGES = [
  { label: '24 h', ms: 24 * HOUR },
  { label: '6 h', ms: 6 * HOUR },
  { label: '1 h', ms: HOUR },
];

async function loadCorrelations(rangeMs: number, signal: AbortSignal): Promise<{ items: Correlation[]; start: number; end: number }> {
  const end = Date.now();
  const start = end - rangeMs;
  return { items: await fetchCorrelations(start, end, signal), start, end };
}

/** Health map (`/ui/health`): hosts, containers and services as a graph of what runs on what, coloured and
 * labelled by health; select or focus a node for its reason and contributing signals; correlations of
 * changes and security events with anomalies on a timeline. */
export function HealthMapPage() {
  const { value: map, error, at } = usePolled(fetchHealthMap, REFRESH_MS);
  const [rangeMs, setRangeMs] = useState(RANGES[0]?.ms ?? 24 * HOUR);
  const corr = usePolled((signal) => loadCorrelations(rangeMs, signal), REFRESH_MS, [rangeMs]);
  const correlations = corr.value?.items ?? (corr.error ? [] : null);
  const corrError = corr.error;
  const rangeLabel = RANGES.find((r) => r.ms === rangeMs)?.label ?? '';
  const [selected, setSelected] = useState<string | null>(null);
  const nodes = map?.nodes ?? [];
  const byId = useMemo(() => new Map(nodes.map((n) => [n.id, n])), [nodes]);

  const counts = useMemo(() => {
    const c: Record<HealthStatus, number> = { healthy: 0, warning: 0, critical: 0, unknown: 0 };
    for (const n of nodes) c[healthOfNode(n)]++;
    return c;
  }, [nodes]);
  const overall: HealthStatus = counts.critical ? 'critical' : counts.warning ? 'warning' : counts.healthy ? 'healthy' : 'unknown';
  const sel = selected ? byId.get(selected) : undefined;
  const runsOn = (map?.edges ?? []).filter((e) => e.source === selected).map((e) => e.target);
  const runHere = (map?.edges ?? []).filter((e) => e.target === selected).map((e) => e.source);
  const selCorr = (correlations ?? []).filter((c) => c.data.anomaly?.resource === selected);

  const related = (title: string, ids: string[], testid: string) =>
    ids.length ? (
      <>
        <h3 class="h3">{title}</h3>
        <ul class="plain" data-testid={testid}>
          {ids.map((id) => {
            const n = byId.get(id);
            return (
              <li key={id}>
                <HealthBadge status={n ? healthOfNode(n) : 'unknown'} />{' '}
                <a href={resourcePath(id)} onClick={linkClick}>
                  {n ? `${n.kind} ${n.name}` : id}
                </a>
              </li>
            );
          })}
        </ul>
      </>
    ) : null;

  return (
    <section aria-labelledby="health-map-title">
      <div class="page-head">
        <h1 id="health-map-title">Health map</h1>
        {at ? (
          <p class="muted small">
            Updated <Time ms={at} /> (every {REFRESH_MS / 1000} s)
          </p>
        ) : null}
      </div>
      {error ? (
        <p role="alert" class="error">
          Cannot load the health map: {error}
        </p>
      ) : null}
      <section class="card" aria-label="Summary" data-testid="health-summary">
        <p class="health">
          <HealthBadge status={overall} /> <span class="muted">
            {counts.critical} critical · {counts.warning} warning · {counts.healthy} healthy · {counts.unknown} not evaluated
          </span>
        </p>
        {map?.truncated ? (
          <p class="muted small">
            Showing the {nodes.length} most severe of {map.total} resources; the{' '}
            <a href="/ui/infrastructure" onClick={linkClick}>
              infrastructure
            </a>{' '}
            page lists them all.
          </p>
        ) : null}
      </section>
      {map === null ? (
        error ? null : <p role="status">Loading…</p>
      ) : nodes.length === 0 ? (
        <p class="empty card">
          Nothing to map yet. Run the agent on a host or send metrics; resources appear on the{' '}
          <a href="/ui/infrastructure" onClick={linkClick}>
            infrastructure
          </a>{' '}
          page first.
        </p>
      ) : (
        <div class="map-layout graph-layout">
          <div class="card map" data-testid="health-map">
            <HealthGraph nodes={nodes} edges={map.edges} selected={selected} onSelect={setSelected} />
            <p class="muted small graph-legend">
              Lines join what runs on what (a container to its host, a service to its container or host). Tab to the graph, then use the arrow keys.
            </p>
          </div>
          <aside class="card map-detail" aria-label="Selected resource" data-testid="map-detail" aria-live="polite">
            {!sel ? (
              <p class="empty">Select a resource (click, or focus it with the keyboard) to see why it has its status.</p>
            ) : (
              <>
                <h2>
                  <a href={resourcePath(sel.id)} onClick={linkClick}>
                    {sel.kind} {sel.name}
                  </a>
                </h2>
                <p>
                  <HealthBadge status={healthOfNode(sel)} />{' '}
                  <span data-testid="map-reason">{sel.health?.reason ?? 'Not evaluated yet: health is evaluated every health.evaluation_interval.'}</span>
                </p>
                {sel.health ? <SignalTable signals={sel.health.signals} /> : null}
                {related('Runs on', runsOn, 'runs-on')}
                {related('Running here', runHere, 'running-here')}
                {selCorr.length ? (
                  <>
                    <h3 class="h3">Correlations (last {rangeLabel})</h3>
                    <CorrelationList items={selCorr} testid="node-correlations" />
                  </>
                ) : null}
              </>
            )}
          </aside>
        </div>
      )}
      <section class="card" aria-labelledby="corr-title">
        <div class="page-head">
          <h2 id="corr-title">Correlations (last {rangeLabel})</h2>
          <div class="range-buttons" role="group" aria-label="Correlation time range">
            {RANGES.map((r) => (
              <button key={r.ms} type="button" class="btn" aria-pressed={r.ms === rangeMs} onClick={() => setRangeMs(r.ms)}>
                {r.label}
              </button>
            ))}
          </div>
        </div>
        {corrError ? (
          <p role="alert" class="error">
            Cannot load the correlations: {corrError}
          </p>
        ) : null}
        {correlations === null ? (
          <p role="status">Loading…</p>
        ) : correlations.length === 0 ? (
          <p class="empty">
            No change or security event was followed by an anomaly. Changes are logged as events with <code>type: change</code>.
          </p>
        ) : (
          <>
            <CorrelationTimeline items={correlations} start={corr.value?.start ?? 0} end={corr.value?.end ?? 0} />
            <details class="small">
              <summary>As a list</summary>
              <CorrelationList items={correlations} testid="correlations" />
            </details>
          </>
        )}
      </section>
    </section>
  );
}
