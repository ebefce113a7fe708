import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { formatValue, type Unit } from '../format';

export interface ChartSeries {
  label: string;
  values: (number | null)[];
}

interface Props {
  title: string;
  /** x values in seconds since the epoch (uPlot's unit). */
  x: number[];
  series: ChartSeries[];
  unit?: Unit;
  height?: number;
  /** Called with a drag-selected range (milliseconds). */
  onZoom?: (startMs: number, endMs: number) => void;
  testId?: string;
}

export const PALETTE = [
  '#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#e377c2', '#8c564b', '#17becf', '#bcbd22', '#ff7f0e', '#7f7f7f',
];

function axisColor(): string {
  return getComputedStyle(document.documentElement).getPropertyValue('--fg-muted').trim() || '#555';
}

function gridColor(): string {
  return getComputedStyle(document.documentElement).getPropertyValue('--grid').trim() || '#ddd';
}

/** A uPlot time-series chart with an accessible legend (buttons that toggle series). */
export function Chart({ title, x, series, unit = '', height = 220, onZoom, testId }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = useRef('');
  const zoomRef = useRef(onZoom);
  zoomRef.current = onZoom;
  const [hidden, setHidden] = useState<Set<string>>(new Set());
  const theme = document.documentElement.dataset.theme ?? 'light';

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const data = [x, ...series.map((s) => s.values)] as uPlot.AlignedData;
    const key = `${theme}|${series.map((s) => s.label).join('\u0000')}`;
    if (plot.current && shape.current === key) {
      plot.current.setData(data);
      return;
    }
    plot.current?.destroy();
    shape.current = key;
    const stroke = axisColor();
    const grid = { stroke: gridColor(), width: 1 };
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      legend: { show: false },
      cursor: { drag: { x: true, y: false, setScale: false } },
      scales: { x: { time: true } },
      axes: [
        { stroke, grid, ticks: grid },
        { stroke, grid, ticks: grid, size: 70, values: (_u, vals) => vals.map((v) => formatValue(v, unit)) },
      ],
      series: [
        {},
        ...series.map((s, i) => ({
          label: s.label,
          stroke: PALETTE[i % PALETTE.length],
          width: 1.5,
          spanGaps: false,
          show: !hidden.has(s.label),
          points: { show: false },
        })),
      ],
      hooks: {
        setSelect: [
          (u: uPlot) => {
            const w = u.select.width;
            if (w > 2 && zoomRef.current) {
              const a = u.posToVal(u.select.left, 'x');
              const b = u.posToVal(u.select.left + w, 'x');
              zoomRef.current(Math.round(a * 1000), Math.round(b * 1000));
            }
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          },
        ],
      },
    };
    plot.current = new uPlot(opts, data, el);
  }, [x, series, theme, height, unit]);

  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const ro = new ResizeObserver(() => {
      if (plot.current) plot.current.setSize({ width: Math.max(200, el.clientWidth), height });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
      plot.current = null;
      shape.current = '';
    };
  }, []);

  const toggle = (label: string, index: number) => {
    const next = new Set(hidden);
    if (next.has(label)) next.delete(label);
    else next.add(label);
    setHidden(next);
    plot.current?.setSeries(index + 1, { show: !next.has(label) });
  };

  return (
    <figure class="chart" data-testid={testId}>
      <figcaption class="chart-title">{title}</figcaption>
      <div ref={box} class="chart-canvas" role="img" aria-label={`${title}: chart of ${series.length} series`} />
      {series.length > 0 ? (
        <ul class="legend" aria-label={`${title} legend`}>
          {series.map((s, i) => (
            <li key={s.label}>
              <button
                type="button"
                class="legend-item"
                aria-pressed={!hidden.has(s.label)}
                title={hidden.has(s.label) ? 'Show this series' : 'Hide this series'}
                onClick={() => toggle(s.label, i)}
              >
                <span class="swatch" style={{ background: PALETTE[i % PALETTE.length] }} aria-hidden="true" />
                <span class={hidden.has(s.label) ? 'legend-label off' : 'legend-label'}>{s.label}</span>
              </button>
            </li>
          ))}
        </ul>
      ) : null}
    </figure>
  );
}
