import { useEffect, useState } from 'preact/hooks';
import { promGet, seriesText, type Metric, type QueryData } from '../api';
import type { Unit } from '../format';
import { alignMatrix, stepFor, type Aligned } from '../series';
import { Chart } from './Chart';

interface Props {
  title: string;
  query: string;
  /** range length in ms, ending now */
  rangeMs: number;
  unit?: Unit;
  height?: number;
  /** how a series is named in the legend (default: the series text) */
  label?: (m: Metric) => string;
  testId?: string;
}

/** A chart of one PromQL range query over the last `rangeMs`, with loading, empty and error states. */
export function QueryChart({ title, query, rangeMs, unit = '', height = 200, label = seriesText, testId }: Props) {
  const [data, setData] = useState<Aligned | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const ctl = new AbortController();
    const end = Date.now();
    setError(null);
    promGet<QueryData>('/api/v1/query_range', { query, start: (end - rangeMs) / 1000, end: end / 1000, step: stepFor(rangeMs) }, ctl.signal)
      .then((d) => setData(d.resultType === 'matrix' ? alignMatrix([{ items: d.result, label }]) : { x: [], series: [] }))
      .catch((e: unknown) => {
        if (!ctl.signal.aborted) setError(e instanceof Error ? e.message : String(e));
      });
    return () => ctl.abort();
  }, [query, rangeMs]);

  if (error)
    return (
      <p role="alert" class="error" data-testid={testId}>
        {title}: {error}
      </p>
    );
  if (!data) return <p role="status">Loading {title}…</p>;
  if (!data.series.length)
    return (
      <p class="empty" data-testid={testId}>
        {title}: no data in the last range. The query was <code>{query}</code>.
      </p>
    );
  return <Chart title={title} x={data.x} series={data.series} unit={unit} height={height} testId={testId} />;
}
