import { useEffect, useMemo, useState } from 'preact/hooks';
import { promGet, seriesText, type Metric, type QueryData } from '../api';
import { Chart } from '../components/Chart';
import { ResultTable } from '../components/ResultTable';
import { PromqlEditor } from '../components/PromqlEditor';
import { resolve, TimeRangePicker, type Range } from '../components/TimeRange';
import { navigate } from '../router';
import { alignMatrix, stepFor } from '../series';
import { formatDuration, parseDuration } from '../time';
import { Catalog } from './Catalog';

type View = 'graph' | 'table';
const LETTERS = 'ABCDEFGHIJ';
const MAX_QUERIES = 10;

interface UrlState {
  queries: string[];
  range: Range;
  view: View;
}

function readUrl(): UrlState {
  const p = new URLSearchParams(location.search);
  const queries = p.getAll('q').slice(0, MAX_QUERIES);
  const range = parseDuration(p.get('range') ?? '') ?? 3600_000;
  const endRaw = Number(p.get('end') ?? '');
  return {
    queries: queries.length ? queries : [''],
    range: { range, end: Number.isFinite(endRaw) && endRaw > 0 ? endRaw : null },
    view: p.get('view') === 'table' ? 'table' : 'graph',
  };
}

function writeUrl(s: UrlState): void {
  const p = new URLSearchParams();
  for (const q of s.queries) p.append('q', q);
  p.set('range', formatDuration(s.range.range));
  if (s.range.end !== null) p.set('end', String(Math.round(s.range.end)));
  p.set('view', s.view);
  const url = `${location.pathname}?${p.toString()}`;
  if (url !== `${location.pathname}${location.search}`) navigate(url, true);
}

interface Result {
  data: QueryData | null;
  error: string | null;
  warnings: string[];
  loading: boolean;
  at: number;
}

export function MetricsPage() {
  const initial = useMemo(readUrl, []);
  const [queries, setQueries] = useState<string[]>(initial.queries);
  const [range, setRange] = useState<Range>(initial.range);
  const [view, setView] = useState<View>(initial.view);
  const [results, setResults] = useState<Result[]>([]);
  const [runId, setRunId] = useState(initial.queries.some((q) => q.trim()) ? 1 : 0);
  const [generation, setGeneration] = useState(0); // bumped when queries are replaced from outside the editors

  const run = () => setRunId((n) => n + 1);

  useEffect(() => {
    if (!runId) return undefined;
    writeUrl({ queries, range, view });
    const ctl = new AbortController();
    const { start, end } = resolve(range);
    const step = stepFor(range.range);
    setResults(queries.map((_q, i) => ({ data: results[i]?.data ?? null, error: null, warnings: [], loading: true, at: end })));
    queries.forEach((q, i) => {
      const done = (r: Partial<Result>) =>
        setResults((prev) => {
          const next = [...prev];
          next[i] = { data: null, error: null, warnings: [], loading: false, at: end, ...r };
          return next;
        });
      if (!q.trim()) {
        done({});
        return;
      }
      const req =
        view === 'graph'
          ? promGet<QueryData>('/api/v1/query_range', { query: q, start: start / 1000, end: end / 1000, step }, ctl.signal)
          : promGet<QueryData>('/api/v1/query', { query: q, time: end / 1000 }, ctl.signal);
      req
        .then((data) => done({ data }))
        .catch((e: unknown) => {
          if (!ctl.signal.aborted) done({ error: e instanceof Error ? e.message : String(e) });
        });
    });
    return () => ctl.abort();
  }, [runId, view, range]);

  const graph = useMemo(() => {
    if (view !== 'graph') return null;
    return alignMatrix(
      results.flatMap((r, qi) =>
        r.data?.resultType === 'matrix'
          ? [{ items: r.data.result, label: (m: Metric) => `${queries.length > 1 ? `${LETTERS[qi]}: ` : ''}${seriesText(m)}` }]
          : [],
      ),
    );
  }, [results, view]);

  const setQuery = (i: number, v: string) => setQueries((qs) => qs.map((q, j) => (j === i ? v : q)));
  const addQuery = () => setQueries((qs) => (qs.length < MAX_QUERIES ? [...qs, ''] : qs));
  const removeQuery = (i: number) => {
    setQueries((qs) => (qs.length > 1 ? qs.filter((_q, j) => j !== i) : ['']));
    setGeneration((g) => g + 1);
  };
  const useMetric = (name: string) => {
    setQueries((qs) => {
      const next = [...qs];
      const empty = next.findIndex((q) => !q.trim());
      if (empty >= 0) next[empty] = name;
      else if (next.length < MAX_QUERIES) next.push(name);
      else next[next.length - 1] = name;
      return next;
    });
    setGeneration((g) => g + 1);
    run();
  };
  const anyLoading = results.some((r) => r.loading);

  return (
    <section aria-labelledby="metrics-title">
      <div class="page-head">
        <h1 id="metrics-title">Metrics explorer</h1>
        <TimeRangePicker value={range} onChange={(r) => { setRange(r); if (!runId) run(); }} />
      </div>
      <form
        class="queries"
        onSubmit={(e) => {
          e.preventDefault();
          run();
        }}
      >
        {queries.map((q, i) => (
          <div class="query-row card" key={`${i}-${generation}`}>
            <span class="query-letter" aria-hidden="true">
              {LETTERS[i]}
            </span>
            <div class="query-input">
              <PromqlEditor value={q} label={`PromQL query ${LETTERS[i]}`} onChange={(v) => setQuery(i, v)} onRun={run} />
              {results[i]?.error ? (
                <p role="alert" class="error query-error" data-testid={`query-error-${i}`}>
                  {results[i]?.error}
                </p>
              ) : null}
              {results[i]?.data && !results[i]?.error ? (
                <p class="muted small">
                  {results[i]?.data?.resultType === 'matrix' || results[i]?.data?.resultType === 'vector'
                    ? `${(results[i]?.data?.result as unknown[]).length} series`
                    : results[i]?.data?.resultType}
                </p>
              ) : null}
            </div>
            <button type="button" class="btn" onClick={() => removeQuery(i)} aria-label={`Remove query ${LETTERS[i]}`}>
              Remove
            </button>
          </div>
        ))}
        <div class="toolbar">
          <button type="submit" class="btn primary" data-testid="run-queries">
            {anyLoading ? 'Running…' : 'Run queries'}
          </button>
          <button type="button" class="btn" onClick={addQuery} disabled={queries.length >= MAX_QUERIES}>
            Add query
          </button>
          <div role="tablist" aria-label="Result view" class="tabs">
            {(['graph', 'table'] as const).map((v) => (
              <button
                key={v}
                type="button"
                role="tab"
                aria-selected={view === v}
                class={view === v ? 'tab active' : 'tab'}
                onClick={() => {
                  setView(v);
                  if (!runId) run();
                }}
              >
                {v === 'graph' ? 'Graph' : 'Table'}
              </button>
            ))}
          </div>
          <span class="muted small">
            Enter runs · {view === 'graph' ? `step ${stepFor(range.range)}s · drag on the graph to zoom` : 'instant query at the range end'}
          </span>
        </div>
      </form>

      <section class="card results" aria-label="Results" data-testid="results">
        {!runId ? (
          <p class="empty">Type a PromQL expression (metric names complete as you type), or pick a metric in the catalog below, and run it.</p>
        ) : view === 'graph' && graph ? (
          graph.series.length ? (
            <Chart
              title="Query results"
              x={graph.x}
              series={graph.series}
              height={320}
              onZoom={(a, b) => setRange({ range: Math.max(1000, b - a), end: b })}
              testId="explorer-chart"
            />
          ) : anyLoading ? (
            <p role="status">Running…</p>
          ) : (
            <p class="empty">No data in this range. Widen the time range or check the expression.</p>
          )
        ) : (
          results.map((r, i) =>
            r.data ? (
              <div key={i} data-testid={`table-${i}`}>
                {queries.length > 1 ? <h2 class="h3">Query {LETTERS[i]}</h2> : null}
                <ResultTable data={r.data} at={r.at} />
              </div>
            ) : null,
          )
        )}
        {results.flatMap((r) => r.warnings).map((w, i) => (
          <p key={i} class="warning">
            {w}
          </p>
        ))}
      </section>
      <Catalog onUse={useMetric} />
    </section>
  );
}
