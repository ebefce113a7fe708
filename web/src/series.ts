// Range-query results (Prometheus matrices) as uPlot's aligned columns: one shared x axis, a column per series.
import { parseValue, type MatrixItem, type Metric } from './api';
import type { ChartSeries } from './components/Chart';

export interface Aligned {
  x: number[];
  series: ChartSeries[];
}

/** Aligns the series of one or more matrices on the union of their timestamps (gaps are null). */
export function alignMatrix(parts: { items: MatrixItem[]; label: (m: Metric) => string }[]): Aligned {
  const xs = new Set<number>();
  const rows: { label: string; pts: Map<number, number> }[] = [];
  for (const part of parts) {
    for (const s of part.items) {
      const pts = new Map<number, number>();
      for (const [t, v] of s.values) {
        xs.add(t);
        pts.set(t, parseValue(v));
      }
      rows.push({ label: part.label(s.metric), pts });
    }
  }
  const x = [...xs].sort((a, b) => a - b);
  const series = rows.map((r) => ({
    label: r.label,
    values: x.map((t) => {
      const v = r.pts.get(t);
      return v === undefined || !Number.isFinite(v) ? null : v;
    }),
  }));
  return { x, series };
}

/** A step that gives about 400 points over the range (at least 1 s). */
export function stepFor(rangeMs: number): number {
  return Math.max(1, Math.round(rangeMs / 1000 / 400));
}
