import type { MatrixItem, Metric, QueryData } from '../api';
import { seriesText } from '../api';
import { Time } from './Time';

/** An instant query's result as a table of series and values (a matrix: each series' last value). */
export function ResultTable({ data, at }: { data: QueryData; at: number }) {
  if (data.resultType === 'scalar' || data.resultType === 'string') {
    return (
      <table class="table result-table">
        <thead>
          <tr>
            <th scope="col">{data.resultType}</th>
            <th scope="col">Value</th>
          </tr>
        </thead>
        <tbody>
          <tr>
            <td>
              <Time ms={data.result[0] * 1000} />
            </td>
            <td class="num value">{data.result[1]}</td>
          </tr>
        </tbody>
      </table>
    );
  }
  const rows: { m: Metric; v: string }[] =
    data.resultType === 'vector'
      ? data.result.map((r) => ({ m: r.metric, v: r.value[1] }))
      : (data.result as MatrixItem[]).map((r) => ({
          m: r.metric,
          v: r.values.length ? `${r.values[r.values.length - 1]?.[1]} (last of ${r.values.length})` : '',
        }));
  if (!rows.length) return <p class="empty">No series matched at <Time ms={at} />. Widen the time range or check the label matchers.</p>;
  return (
    <table class="table result-table">
      <caption class="sr-only">Instant query result</caption>
      <thead>
        <tr>
          <th scope="col">Series</th>
          <th scope="col">Value</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r, i) => (
          <tr key={i}>
            <td class="mono series">{seriesText(r.m)}</td>
            <td class="num value">{r.v}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
