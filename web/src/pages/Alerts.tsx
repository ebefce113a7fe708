import { useEffect, useState } from 'preact/hooks';
import { labelsText, promGet, type Alert } from '../api';
import { Time } from '../components/Time';

interface Rule {
  name: string;
  query: string;
  type: 'alerting' | 'recording';
  health: string;
  lastError?: string;
  state?: string;
  duration?: number;
  alerts?: Alert[];
  lastEvaluation?: string;
}
interface Group { name: string; file: string; interval: number; rules: Rule[] }

const STATE_ICON: Record<string, string> = { firing: '✖', pending: '▲', inactive: '✔' };

/** Alerts (first version): firing and pending alerts, and the rule groups, read-only. */
export function AlertsPage() {
  const [alerts, setAlerts] = useState<Alert[] | null>(null);
  const [groups, setGroups] = useState<Group[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const ctl = new AbortController();
    Promise.all([
      promGet<{ alerts: Alert[] }>('/api/v1/alerts', {}, ctl.signal),
      promGet<{ groups: Group[] }>('/api/v1/rules', {}, ctl.signal),
    ])
      .then(([a, r]) => {
        setAlerts(a.alerts);
        setGroups(r.groups);
      })
      .catch((e: unknown) => {
        if (!ctl.signal.aborted) setError(e instanceof Error ? e.message : String(e));
      });
    return () => ctl.abort();
  }, []);

  return (
    <section aria-labelledby="alerts-title">
      <h1 id="alerts-title">Alerts</h1>
      <p class="muted small">
        Read-only for now: create and edit rules with <code>rules.files</code> or <code>POST /api/v1/rules/&#123;namespace&#125;</code>, and
        silences with <code>clearsight silence add</code> or <code>amtool</code> (docs/alerting.md).
      </p>
      {error ? <p role="alert" class="error">Cannot load alerts: {error}</p> : null}
      <section class="card" aria-labelledby="active-title">
        <h2 id="active-title">Firing and pending</h2>
        {alerts === null ? (
          <p role="status">Loading…</p>
        ) : alerts.length === 0 ? (
          <p class="empty">No alert is firing or pending.</p>
        ) : (
          <table class="table">
            <caption class="sr-only">Active alerts</caption>
            <thead>
              <tr>
                <th scope="col">State</th>
                <th scope="col">Alert</th>
                <th scope="col">Labels</th>
                <th scope="col">Active since</th>
                <th scope="col">Value</th>
              </tr>
            </thead>
            <tbody>
              {alerts.map((a, i) => (
                <tr key={i}>
                  <td class={`state-${a.state}`}>
                    <span aria-hidden="true">{STATE_ICON[a.state] ?? ''}</span> {a.state}
                  </td>
                  <td>{a.labels.alertname}</td>
                  <td class="mono small">
                    {labelsText(a.labels, ['alertname'])}
                  </td>
                  <td>{a.activeAt ? <Time ms={Date.parse(a.activeAt)} /> : '–'}</td>
                  <td class="num">{a.value ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section class="card" aria-labelledby="rules-title">
        <h2 id="rules-title">Rules</h2>
        {groups === null ? (
          <p role="status">Loading…</p>
        ) : groups.length === 0 ? (
          <p class="empty">No rule groups are loaded. Add rule files with <code>rules.files</code> in the configuration (docs/rules.md).</p>
        ) : (
          groups.map((g) => (
            <div key={`${g.file}/${g.name}`}>
              <h3 class="h3">
                {g.name} <span class="muted small">{g.file} · every {g.interval}s</span>
              </h3>
              <table class="table">
                <caption class="sr-only">Rules of group {g.name}</caption>
                <thead>
                  <tr>
                    <th scope="col">Rule</th>
                    <th scope="col">Type</th>
                    <th scope="col">Expression</th>
                    <th scope="col">Health</th>
                    <th scope="col">Last evaluation</th>
                  </tr>
                </thead>
                <tbody>
                  {g.rules.map((r) => (
                    <tr key={r.name}>
                      <td>{r.name}</td>
                      <td>{r.type === 'alerting' ? `alerting (${r.state ?? ''})` : 'recording'}</td>
                      <td class="mono small">{r.query}</td>
                      <td>
                        {r.health}
                        {r.lastError ? <span class="error small"> {r.lastError}</span> : null}
                      </td>
                      <td>{r.lastEvaluation && !r.lastEvaluation.startsWith('0001') ? <Time ms={Date.parse(r.lastEvaluation)} /> : '–'}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ))
        )}
      </section>
    </section>
  );
}
