import { useEffect, useState } from 'preact/hooks';
import { promGet, seriesText, type Metric, type QueryData } from '../api';
import type { Unit } from '../format';
import { alignMatrix, stepFor, type Aligned } from '../series';
import { Chart } from './Chart';
import { resolve, type Range } from './TimeRange';

interface Props {
  title: string;
  query: string;
  range: Range;
  unit?: Unit;
  height?: number;
  /** how a series is named in the legend (default: the series text) */
  label?: (m: Metric) => string;
  testId?: string;
  /** changing it queries again (e.g. a refresh tick) */
  reload?: number;
}

/** A chart of one PromQL range query over the last `rangeMs`, with loading, empty and error states. */
export function QueryChart({ title, query, range, unit = '', height = 200, label = seriesText, testId, reload = 0 }: Props) {
  const [data, setData] = useState<Aligned | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const ctl = new AbortController();
    const { start, end } = resolve(range);
    setError(null);
    promGet<QueryData>('/api/v1/query_range', { query, start: start / 1000, end: end / 1000, step: stepFor(range.range) }, ctl.signal)
      .then((d) => setData(d.resultType === 'matrix' ? alignMatrix([{ items: d.result, label }]) : { x: [], series: [] }))
      .catch((e: unknown) => {
        if (!ctl.signal.aborted) setError(e instanceof Error ? e.message : String(e));
      });
    return () => ctl.abort();
  }, [query, range.range, range.end, reload]);

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
        {title}: no data in this time range. The query was <code>{query}</code>.
      </p>
    );
  return <Chart title={title} x={data.x} series={data.series} unit={unit} height={height} testId={testId} />;
}
