import { useEffect, useMemo, useState } from 'preact/hooks';
import { promGet } from '../api';
import { HealthBadge } from '../components/Status';
import { Time } from '../components/Time';
import { HEALTH_ICON, resourcePath, type Health, type HealthStatus, type Resource } from '../resources';
import { linkClick } from '../router';
import { SignalTable, useFleet } from './Infrastructure';

interface Correlation {
  id: string;
  message: string;
  timestamp_ns: string;
  data: { cause?: { message?: string; type?: string }; anomaly?: { resource?: string; metric?: string } };
}

function statusOf(health: Map<string, Health>, id: string): HealthStatus {
  return health.get(id)?.status ?? 'unknown';
}

/** A resource on the map: a button that selects it (icon, name and status word; colour is extra). */
function Node({ r, health, selected, onSelect }: { r: Resource; health: Map<string, Health>; selected: boolean; onSelect: (id: string) => void }) {
  const st = statusOf(health, r.id);
  return (
    <button
      type="button"
      class={`map-node node-${st}${selected ? ' selected' : ''}`}
      aria-pressed={selected}
      data-resource={r.id}
      data-health={st}
      title={health.get(r.id)?.reason ?? 'not evaluated yet'}
      onClick={() => onSelect(r.id)}
    >
      <span aria-hidden="true" class="node-icon">
        {HEALTH_ICON[st]}
      </span>{' '}
      <span class="node-name">{r.name}</span> <span class="node-status">{st}</span>
    </button>
  );
}

/** Health map (`/ui/health`): hosts with their containers, and services, coloured by health; select one for
 * its reason and contributing signals; correlations of changes with anomalies on a timeline. */
export function HealthMapPage() {
  const { resources, health, error, at } = useFleet();
  const [selected, setSelected] = useState<string | null>(null);
  const [correlations, setCorrelations] = useState<Correlation[] | null>(null);

  useEffect(() => {
    const ctl = new AbortController();
    promGet<{ correlations: Correlation[] }>('/api/v1/correlations', { limit: 50 }, ctl.signal)
      .then((d) => setCorrelations(d.correlations))
      .catch(() => setCorrelations([]));
    return () => ctl.abort();
  }, []);

  const groups = useMemo(() => {
    const list = resources ?? [];
    const hosts = list.filter((r) => r.kind === 'host');
    const hostIds = new Set(hosts.map((h) => h.id));
    return {
      hosts: hosts.map((h) => ({ host: h, children: list.filter((c) => c.parent === h.id) })),
      orphans: list.filter((r) => r.kind === 'container' && !(r.parent && hostIds.has(r.parent))),
      services: list.filter((r) => r.kind === 'service'),
    };
  }, [resources]);

  const counts = useMemo(() => {
    const c: Record<HealthStatus, number> = { healthy: 0, warning: 0, critical: 0, unknown: 0 };
    for (const r of resources ?? []) c[statusOf(health, r.id)]++;
    return c;
  }, [resources, health]);
  const overall: HealthStatus = counts.critical ? 'critical' : counts.warning ? 'warning' : counts.healthy ? 'healthy' : 'unknown';
  const sel = selected ? (resources ?? []).find((r) => r.id === selected) : undefined;
  const selHealth = selected ? health.get(selected) : undefined;

  return (
    <section aria-labelledby="health-map-title">
      <div class="page-head">
        <h1 id="health-map-title">Health map</h1>
        {at ? (
          <p class="muted small">
            Updated <Time ms={at} /> (every 15 s)
          </p>
        ) : null}
      </div>
      {error ? (
        <p role="alert" class="error">
          Cannot load health: {error}
        </p>
      ) : null}
      <section class="card" aria-label="Summary" data-testid="health-summary">
        <p class="health">
          <HealthBadge status={overall} /> <span class="muted">
            {counts.critical} critical · {counts.warning} warning · {counts.healthy} healthy · {counts.unknown} not evaluated
          </span>
        </p>
      </section>
      {resources === null ? (
        error ? null : <p role="status">Loading…</p>
      ) : resources.length === 0 ? (
        <p class="empty card">
          Nothing to map yet. Run the agent on a host or send metrics; resources appear on the{' '}
          <a href="/ui/infrastructure" onClick={linkClick}>
            infrastructure
          </a>{' '}
          page first.
        </p>
      ) : (
        <div class="map-layout">
          <div class="map" data-testid="health-map">
            {groups.hosts.map(({ host, children }) => (
              <section key={host.id} class={`map-group group-${statusOf(health, host.id)}`} aria-label={`Host ${host.name}`}>
                <Node r={host} health={health} selected={selected === host.id} onSelect={setSelected} />
                {children.length ? (
                  <ul class="map-children" aria-label={`Containers on ${host.name}`}>
                    {children.map((c) => (
                      <li key={c.id}>
                        <Node r={c} health={health} selected={selected === c.id} onSelect={setSelected} />
                      </li>
                    ))}
                  </ul>
                ) : null}
              </section>
            ))}
            {groups.orphans.length ? (
              <section class="map-group" aria-label="Containers without a known host">
                <h2 class="h3">Containers without a known host</h2>
                <ul class="map-children">
                  {groups.orphans.map((c) => (
                    <li key={c.id}>
                      <Node r={c} health={health} selected={selected === c.id} onSelect={setSelected} />
                    </li>
                  ))}
                </ul>
              </section>
            ) : null}
            {groups.services.length ? (
              <section class="map-group" aria-label="Services">
                <h2 class="h3">Services</h2>
                <ul class="map-children">
                  {groups.services.map((s) => (
                    <li key={s.id}>
                      <Node r={s} health={health} selected={selected === s.id} onSelect={setSelected} />
                    </li>
                  ))}
                </ul>
              </section>
            ) : null}
          </div>
          <aside class="card map-detail" aria-label="Selected resource" data-testid="map-detail" aria-live="polite">
            {!sel ? (
              <p class="empty">Select a resource to see why it has its status.</p>
            ) : (
              <>
                <h2>
                  <a href={resourcePath(sel.id)} onClick={linkClick}>
                    {sel.kind} {sel.name}
                  </a>
                </h2>
                <p>
                  <HealthBadge status={selHealth?.status ?? 'unknown'} />{' '}
                  <span data-testid="map-reason">{selHealth?.reason ?? 'Not evaluated yet: health is evaluated every health.evaluation_interval.'}</span>
                </p>
                {selHealth ? <SignalTable signals={selHealth.signals} /> : null}
              </>
            )}
          </aside>
        </div>
      )}
      <section class="card" aria-labelledby="corr-title">
        <h2 id="corr-title">Correlations (last 24 h)</h2>
        {correlations === null ? (
          <p role="status">Loading…</p>
        ) : correlations.length === 0 ? (
          <p class="empty">
            No change or security event was followed by an anomaly. Changes are logged as events with <code>type: change</code>.
          </p>
        ) : (
          <ol class="timeline" data-testid="correlations">
            {correlations.map((c) => (
              <li key={c.id}>
                <Time ms={Number(c.timestamp_ns.slice(0, -6) || '0')} /> · {c.message}
                {c.data.anomaly?.resource ? (
                  <>
                    {' '}
                    on{' '}
                    <a href={resourcePath(c.data.anomaly.resource)} onClick={linkClick}>
                      {c.data.anomaly.resource}
                    </a>
                  </>
                ) : null}
              </li>
            ))}
          </ol>
        )}
      </section>
    </section>
  );
}
