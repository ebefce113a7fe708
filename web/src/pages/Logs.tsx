import { useEffect, useState } from 'preact/hooks';
import { getJSON, labelsText } from '../api';
import { Time } from '../components/Time';
import { resolve, TimeRangePicker, type Range } from '../components/TimeRange';
import { navigate } from '../router';
import { formatDuration, parseDuration } from '../time';

interface Stream { stream: Record<string, string>; values: [string, string][] }
interface LokiResponse { status: string; data: { resultType: string; result: Stream[] } }
interface Line { ns: string; ms: number; labels: Record<string, string>; line: string }

const LIMIT = 1000;

/** Logs explorer (first version): a LogQL stream selector with line filters over Loki's query_range. */
export function LogsPage() {
  const p = new URLSearchParams(location.search);
  const [query, setQuery] = useState(p.get('q') ?? '');
  const [range, setRange] = useState<Range>({ range: parseDuration(p.get('range') ?? '') ?? 3600_000, end: null });
  const [lines, setLines] = useState<Line[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [runId, setRunId] = useState(p.get('q') ? 1 : 0);

  useEffect(() => {
    if (!runId || !query.trim()) return undefined;
    navigate(`${location.pathname}?${new URLSearchParams({ q: query, range: formatDuration(range.range) }).toString()}`, true);
    const ctl = new AbortController();
    const { start, end } = resolve(range);
    setBusy(true);
    setError(null);
    getJSON<LokiResponse>(
      '/loki/api/v1/query_range',
      { query, start: (start / 1000).toFixed(3), end: (end / 1000).toFixed(3), limit: LIMIT, direction: 'backward' },
      ctl.signal,
    )
      .then((r) => {
        const out: Line[] = [];
        for (const s of r.data.result) for (const [ns, line] of s.values) out.push({ ns, ms: Number(ns.slice(0, -6) || '0'), labels: s.stream, line });
        out.sort((a, b) => (a.ns.length !== b.ns.length ? b.ns.length - a.ns.length : a.ns < b.ns ? 1 : a.ns > b.ns ? -1 : 0));
        setLines(out);
      })
      .catch((e: unknown) => {
        if (!ctl.signal.aborted) setError(e instanceof Error ? e.message : String(e));
      })
      .finally(() => setBusy(false));
    return () => ctl.abort();
  }, [runId, range]);

  return (
    <section aria-labelledby="logs-title">
      <div class="page-head">
        <h1 id="logs-title">Logs</h1>
        <TimeRangePicker value={range} onChange={setRange} />
      </div>
      <form
        class="card toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          setRunId((n) => n + 1);
        }}
      >
        <label class="grow">
          LogQL query
          <input
            class="mono wide"
            value={query}
            placeholder={'{job="varlogs"} |= "error"'}
            onInput={(e) => setQuery(e.currentTarget.value)}
          />
        </label>
        <button type="submit" class="btn primary" disabled={busy}>
          {busy ? 'Running…' : 'Run'}
        </button>
      </form>
      <p class="muted small">
        Stream selectors with line filters (<code>|=</code>, <code>!=</code>, <code>|~</code>, <code>!~</code>); newest first, at most {LIMIT} lines.
        Not built yet here: the LogQL editor with completion, the volume histogram, live tail and log context.
      </p>
      {error ? <p role="alert" class="error">{error}</p> : null}
      <section class="card" aria-label="Log lines">
        {lines === null ? (
          <p class="empty">Enter a stream selector such as <code>{'{service_name="api"}'}</code> and run it.</p>
        ) : lines.length === 0 ? (
          <p class="empty">No log lines in this range. Widen the time range or loosen the filters.</p>
        ) : (
          <table class="table logs" data-testid="log-lines">
            <caption class="sr-only">Log lines, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Stream</th>
                <th scope="col">Line</th>
              </tr>
            </thead>
            <tbody>
              {lines.map((l, i) => (
                <tr key={i}>
                  <td class="nowrap">
                    <Time ms={l.ms} />
                  </td>
                  <td class="mono small">
                    {labelsText(l.labels)}
                  </td>
                  <td class="mono logline">{l.line}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </section>
  );
}
