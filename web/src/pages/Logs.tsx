import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { getJSON, type MatrixItem } from '../api';
import { Chart } from '../components/Chart';
import { byNewest, linesOf, LogList, type Line, type Stream } from '../components/LogLines';
import { LogqlEditor } from '../components/LogqlEditor';
import { resolve, TimeRangePicker, type Range } from '../components/TimeRange';
import { navigate } from '../router';
import { stepFor, type Aligned as Volume } from '../series';
import { formatDuration, parseDuration } from '../time';

interface LokiStreams { status: string; data: { resultType: 'streams'; result: Stream[] } }
interface LokiMatrix { status: string; data: { resultType: 'matrix'; result: MatrixItem[] } }

/** Lines per query: the server's default logs.max_entries_limit_per_query (Loki's too). */
const LIMIT = 5000;
/** Lines kept while tailing (oldest dropped). */
const TAIL_KEEP = 5000;

/** Line counts per level on the full step grid of [start, end] (a step without lines is 0, not a gap). */
function volumeOf(items: MatrixItem[], start: number, end: number, step: number): Volume {
  const x: number[] = [];
  for (let t = start; t <= end + 1e-9; t += step) x.push(t);
  const series = items.map((s) => {
    const values: (number | null)[] = x.map(() => 0);
    for (const [t, v] of s.values) {
      const i = Math.round((t - start) / step);
      if (i >= 0 && i < values.length) values[i] = Number(v);
    }
    return { label: s.metric.level ?? 'lines', values };
  });
  return { x, series };
}

function isLogQuery(q: string): boolean {
  return q.trim().startsWith('{');
}

type TailState = 'off' | 'connecting' | 'live' | 'closed';

/** Logs explorer: LogQL editor, volume over time, lines with level, labels and a JSON view, live tail over
 * Loki's tail WebSocket, and NDJSON export of the lines shown. */
export function LogsPage() {
  const p = new URLSearchParams(location.search);
  const [query, setQuery] = useState(p.get('q') ?? '');
  const [range, setRange] = useState<Range>({ range: parseDuration(p.get('range') ?? '') ?? 3600_000, end: null });
  const [lines, setLines] = useState<Line[] | null>(null);
  const [volume, setVolume] = useState<Volume | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [runId, setRunId] = useState(p.get('q') ? 1 : 0);
  const [tail, setTail] = useState<TailState>('off');
  const socket = useRef<WebSocket | null>(null);

  const stopTail = () => {
    socket.current?.close();
    socket.current = null;
    setTail('off');
  };

  useEffect(() => {
    if (!runId || !query.trim()) return undefined;
    navigate(`${location.pathname}?${new URLSearchParams({ q: query, range: formatDuration(range.range) }).toString()}`, true);
    if (!isLogQuery(query)) {
      setError('The logs page runs log queries, which start with a stream selector such as {job="api"}. Run metric queries (count_over_time ...) in a dashboard or with the API.');
      return undefined;
    }
    const ctl = new AbortController();
    const { start, end } = resolve(range);
    const step = stepFor(range.range) * 4;
    const params = { start: (start / 1000).toFixed(3), end: (end / 1000).toFixed(3) };
    setBusy(true);
    setError(null);
    getJSON<LokiStreams>('/loki/api/v1/query_range', { query, ...params, limit: LIMIT, direction: 'backward' }, ctl.signal)
      .then((r) => setLines(linesOf(r.data.result).sort(byNewest)))
      .catch((e: unknown) => {
        if (!ctl.signal.aborted) setError(e instanceof Error ? e.message : String(e));
      })
      .finally(() => setBusy(false));
    getJSON<LokiMatrix>('/loki/api/v1/query_range', { query: `sum by (level) (count_over_time(${query} [${step}s]))`, ...params, step }, ctl.signal)
      .then((r) => setVolume(volumeOf(r.data.result, start / 1000, end / 1000, step)))
      .catch(() => setVolume(null));
    return () => ctl.abort();
  }, [runId, range]);

  useEffect(() => () => socket.current?.close(), []);

  const startTail = () => {
    if (!isLogQuery(query)) {
      setError('Live tail needs a log query that starts with a stream selector, such as {job="api"}.');
      return;
    }
    socket.current?.close();
    setError(null);
    setTail('connecting');
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/loki/api/v1/tail?${new URLSearchParams({ query, limit: '100', delay_for: '0' }).toString()}`);
    socket.current = ws;
    setLines([]);
    ws.onopen = () => setTail('live');
    ws.onmessage = (ev) => {
      const frame = JSON.parse(String(ev.data)) as { streams?: Stream[] };
      const fresh = linesOf(frame.streams ?? []).sort(byNewest);
      if (fresh.length) setLines((prev) => [...fresh, ...(prev ?? [])].slice(0, TAIL_KEEP));
    };
    ws.onclose = (ev) => {
      if (socket.current !== ws) return;
      socket.current = null;
      setTail('closed');
      if (ev.code !== 1000) setError(`Live tail ended (${ev.code}${ev.reason ? `: ${ev.reason}` : ''}). Check the query and start it again.`);
    };
  };

  const exportLines = () => {
    const body = (lines ?? []).map((l) => JSON.stringify({ ts: l.ns, labels: l.labels, line: l.line })).join('\n');
    const url = URL.createObjectURL(new Blob([`${body}\n`], { type: 'application/x-ndjson' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = 'logs.ndjson';
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };

  const counts = useMemo(() => (lines ? `${lines.length}${lines.length >= LIMIT && tail === 'off' ? '+' : ''} lines` : ''), [lines, tail]);

  return (
    <section aria-labelledby="logs-title">
      <div class="page-head">
        <h1 id="logs-title">Logs</h1>
        <TimeRangePicker value={range} onChange={(r) => { setRange(r); if (!runId) setRunId(1); }} />
      </div>
      <form
        class="card toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          stopTail();
          setRunId((n) => n + 1);
        }}
      >
        <div class="grow query-input">
          <LogqlEditor value={query} label="LogQL query" onChange={setQuery} onRun={() => { stopTail(); setRunId((n) => n + 1); }} />
        </div>
        <button type="submit" class="btn primary" disabled={busy} data-testid="run-logs">
          {busy ? 'Running…' : 'Run'}
        </button>
        {tail === 'off' || tail === 'closed' ? (
          <button type="button" class="btn" onClick={startTail} data-testid="tail-start">
            Live tail
          </button>
        ) : (
          <button type="button" class="btn" onClick={stopTail} data-testid="tail-stop">
            Stop tail
          </button>
        )}
        <button type="button" class="btn" onClick={exportLines} disabled={!lines?.length}>
          Export NDJSON
        </button>
      </form>
      <p class="muted small">
        Enter runs; labels and their values complete as you type. Newest first, at most {LIMIT} lines per query. Select a line for its labels
        and, for JSON lines, an expanded view; arrow keys, Page Up/Down, Home and End move between lines.
      </p>
      {error ? <p role="alert" class="error">{error}</p> : null}
      <p class="live-status small" data-testid="tail-status" data-state={tail}>
        {tail === 'live' ? (
          <>
            <span class="dot dot-live" aria-hidden="true" /> Live tail: new lines appear at the top (at most {TAIL_KEEP} kept)
          </>
        ) : tail === 'connecting' ? (
          'Connecting the live tail…'
        ) : tail === 'closed' ? (
          'Live tail stopped.'
        ) : null}
      </p>
      {volume && volume.series.length && tail === 'off' ? (
        <section class="card" aria-label="Log volume">
          <Chart title="Lines over time" x={volume.x} series={volume.series} height={120} testId="log-volume" />
        </section>
      ) : null}
      <section class="card" aria-label="Log lines">
        {lines === null ? (
          <p class="empty">Enter a stream selector such as <code>{'{service_name="api"}'}</code> and run it, or start a live tail.</p>
        ) : lines.length === 0 ? (
          <p class="empty">{tail === 'live' ? 'Waiting for new lines…' : 'No log lines in this range. Widen the time range or loosen the filters.'}</p>
        ) : (
          <>
            <p class="muted small">{counts}</p>
            <LogList key={runId} lines={lines} label="Log lines, newest first" />
          </>
        )}
      </section>
    </section>
  );
}
