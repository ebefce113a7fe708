import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { labelsText, promGet, type Alert } from '../api';
import { Chart, type ChartSeries } from '../components/Chart';
import { Time } from '../components/Time';
import { formatValue, type Unit } from '../format';
import { LiveSeries, type LiveMessage } from '../live';
import { linkClick } from '../router';

type Conn = 'connecting' | 'live' | 'reconnecting';

function useLive(): { live: LiveSeries; version: number; conn: Conn; error: string | null } {
  const live = useRef(new LiveSeries()).current;
  const [version, setVersion] = useState(0);
  const [conn, setConn] = useState<Conn>('connecting');
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let ws: WebSocket | null = null;
    let retry: number | undefined;
    let stopped = false;
    let delay = 1000;
    const open = () => {
      const proto = location.protocol === 'https:' ? 'wss' : 'ws';
      ws = new WebSocket(`${proto}://${location.host}/ws/metrics`);
      ws.onopen = () => {
        delay = 1000;
        setConn('live');
        setError(null);
      };
      ws.onmessage = (ev: MessageEvent<string>) => {
        const msg = JSON.parse(ev.data) as LiveMessage;
        if (msg.type === 'error') setError(msg.error);
        else {
          live.apply(msg);
          setVersion((v) => v + 1);
        }
      };
      ws.onclose = () => {
        if (stopped) return;
        setConn('reconnecting');
        retry = window.setTimeout(open, delay);
        delay = Math.min(delay * 2, 15000);
      };
    };
    open();
    return () => {
      stopped = true;
      window.clearTimeout(retry);
      ws?.close();
    };
  }, []);
  return { live, version, conn, error };
}

function useAlerts(): { alerts: Alert[] | null; error: string | null } {
  const [alerts, setAlerts] = useState<Alert[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let timer: number | undefined;
    const ctl = new AbortController();
    const load = () => {
      promGet<{ alerts: Alert[] }>('/api/v1/alerts', {}, ctl.signal)
        .then((d) => {
          setAlerts(d.alerts);
          setError(null);
        })
        .catch((e: unknown) => {
          if (!ctl.signal.aborted) setError(String(e instanceof Error ? e.message : e));
        })
        .finally(() => {
          if (!ctl.signal.aborted) timer = window.setTimeout(load, 10000);
        });
    };
    load();
    return () => {
      ctl.abort();
      window.clearTimeout(timer);
    };
  }, []);
  return { alerts, error };
}

const CHARTS: { title: string; panels: { key: string; suffix: string }[]; unit: Unit }[] = [
  { title: 'CPU busy', panels: [{ key: 'cpu', suffix: '' }], unit: 'percent' },
  { title: 'Memory used', panels: [{ key: 'memory', suffix: '' }], unit: 'percent' },
  { title: 'Fullest filesystem', panels: [{ key: 'disk', suffix: '' }], unit: 'percent' },
  { title: 'Network', panels: [{ key: 'net_rx', suffix: ' received' }, { key: 'net_tx', suffix: ' sent' }], unit: 'bytes_per_second' },
];

interface StatusPage { status: string; resources: Record<string, Record<string, number>> }

/** The resources' health from the status page (`GET /status`), polled every 15 s; null until known. */
function useStatusPage(): StatusPage | null {
  const [page, setPage] = useState<StatusPage | null>(null);
  useEffect(() => {
    const ctl = new AbortController();
    let timer = 0;
    const load = () => {
      promGet<StatusPage>('/status', {}, ctl.signal)
        .then(setPage)
        .catch(() => undefined)
        .finally(() => {
          if (!ctl.signal.aborted) timer = window.setTimeout(load, 15_000);
        });
    };
    load();
    return () => {
      ctl.abort();
      clearTimeout(timer);
    };
  }, []);
  return page;
}

const RANK: Record<string, number> = { healthy: 0, warning: 1, critical: 2 };

function Health({ alerts, status }: { alerts: Alert[] | null; status: StatusPage | null }) {
  if (alerts === null) return <p role="status">Checking…</p>;
  const firing = alerts.filter((a) => a.state === 'firing');
  const critical = firing.filter((a) => a.labels.severity === 'critical').length;
  const fromAlerts = critical ? 'critical' : firing.length ? 'warning' : 'healthy';
  const fromResources = status && status.status in RANK ? status.status : 'healthy';
  const level = (RANK[fromResources] ?? 0) > (RANK[fromAlerts] ?? 0) ? fromResources : fromAlerts;
  const text = { critical: 'Critical', warning: 'Warning', healthy: 'Healthy' }[level] ?? level;
  const icon = { critical: '✖', warning: '▲', healthy: '✔' }[level] ?? '?';
  const count = (lvl: string) => Object.values(status?.resources ?? {}).reduce((n, c) => n + (c[lvl] ?? 0), 0);
  return (
    <div class={`health health-${level}`} data-testid="health">
      <span class="health-icon" aria-hidden="true">
        {icon}
      </span>
      <span class="health-text">{text}</span>
      <span class="muted">
        {firing.length} firing alert{firing.length === 1 ? '' : 's'}
        {critical ? `, ${critical} critical` : ''}; resources: {count('critical')} critical, {count('warning')} warning, {count('healthy')} healthy (
        <a href="/ui/health" onClick={linkClick}>
          health map
        </a>
        ).
      </span>
    </div>
  );
}

function AlertList({ alerts, error }: { alerts: Alert[] | null; error: string | null }) {
  if (error) return <p role="alert" class="error">Cannot load alerts: {error}</p>;
  if (alerts === null) return <p role="status">Loading alerts…</p>;
  const firing = alerts.filter((a) => a.state === 'firing');
  if (!firing.length)
    return (
      <p class="empty">
        No alerts are firing. Alerting rules come from <code>rules.files</code> or the rules API; see them on the{' '}
        <a href="/ui/alerts" onClick={linkClick}>Alerts</a> page.
      </p>
    );
  return (
    <table class="table" data-testid="firing-alerts">
      <caption class="sr-only">Firing alerts</caption>
      <thead>
        <tr>
          <th scope="col">Alert</th>
          <th scope="col">Severity</th>
          <th scope="col">Labels</th>
          <th scope="col">Since</th>
          <th scope="col">Summary</th>
        </tr>
      </thead>
      <tbody>
        {firing.map((a, i) => (
          <tr key={i}>
            <td>{a.labels.alertname}</td>
            <td>{a.labels.severity ?? '–'}</td>
            <td class="mono">
              {labelsText(a.labels, ['alertname', 'severity'])}
            </td>
            <td>{a.activeAt ? <Time ms={Date.parse(a.activeAt)} /> : '–'}</td>
            <td>{a.annotations.summary ?? a.annotations.description ?? ''}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function OverviewPage() {
  const { live, version, conn, error } = useLive();
  const { alerts, error: alertError } = useAlerts();
  const statusPage = useStatusPage();
  const hosts = live.hosts();

  const charts = useMemo(() => {
    const x = live.t.map((t) => t / 1000);
    return CHARTS.map((c) => {
      const series: ChartSeries[] = [];
      for (const p of c.panels) {
        const byHost = live.values.get(p.key);
        if (!byHost) continue;
        for (const [host, col] of [...byHost].sort(([a], [b]) => (a < b ? -1 : 1))) {
          series.push({ label: `${host}${p.suffix}`, values: [...col] });
        }
      }
      return { ...c, x, series };
    });
  }, [version]);

  return (
    <section aria-labelledby="overview-title">
      <div class="page-head">
        <h1 id="overview-title">Overview</h1>
        <p class="live-status" role="status" data-testid="live-status" data-state={conn}>
          <span class={`dot dot-${conn}`} aria-hidden="true" />
          {conn === 'live' ? 'Live' : conn === 'connecting' ? 'Connecting…' : 'Disconnected, reconnecting…'}
          {live.lastTick ? (
            <>
              {' '}
              · updated <Time ms={live.lastTick} />
            </>
          ) : null}
        </p>
      </div>
      {error ? <p role="alert" class="error">Live updates stopped: {error}. They resume on reconnect.</p> : null}

      <div class="grid two">
        <section class="card" aria-labelledby="health-title">
          <h2 id="health-title">Health</h2>
          <Health alerts={alerts} status={statusPage} />
        </section>
        <section class="card" aria-labelledby="alerts-title">
          <h2 id="alerts-title">Firing alerts</h2>
          <AlertList alerts={alerts} error={alertError} />
        </section>
      </div>

      <section class="card" aria-labelledby="hosts-title">
        <h2 id="hosts-title">Hosts</h2>
        {hosts.length === 0 ? (
          <p class="empty">
            No host metrics in the last 15 minutes. Start an agent on each host with <code>clearsight agent --url {location.origin}</code>{' '}
            (<code>make run</code> starts one for this machine), or send node_exporter metrics by remote-write.
          </p>
        ) : (
          <table class="table" data-testid="hosts">
            <caption class="sr-only">Latest values per host</caption>
            <thead>
              <tr>
                <th scope="col">Host</th>
                <th scope="col">CPU busy</th>
                <th scope="col">Memory used</th>
                <th scope="col">Fullest filesystem</th>
                <th scope="col">Network in</th>
                <th scope="col">Network out</th>
              </tr>
            </thead>
            <tbody>
              {hosts.map((h) => (
                <tr key={h} data-host={h}>
                  <th scope="row">{h}</th>
                  {(['cpu', 'memory', 'disk', 'net_rx', 'net_tx'] as const).map((k) => (
                    <td key={k} data-panel={k} class="num">
                      {formatValue(live.latest(k, h), k.startsWith('net') ? 'bytes_per_second' : 'percent')}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      <div class="grid two">
        {charts.map((c) => (
          <section class="card" key={c.title}>
            <Chart title={c.title} x={c.x} series={c.series} unit={c.unit} height={200} testId={`chart-${c.panels[0]?.key ?? ''}`} />
          </section>
        ))}
      </div>
    </section>
  );
}
