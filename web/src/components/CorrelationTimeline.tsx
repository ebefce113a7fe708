import { useMemo, useState } from 'preact/hooks';
import { nsToMs, timeTicks, timeX, type Correlation } from '../healthmap';
import { formatValue, type Unit } from '../format';
import { resourcePath } from '../resources';
import { linkClick } from '../router';
import { formatLocal, formatUTC } from '../time';
import { Time } from './Time';

const LABEL_W = 180;
const PLOT_W = 760;
const ROW_H = 34;
const AXIS_H = 30;
const OTHER = '(no resource)';

const pad = (n: number) => String(n).padStart(2, '0');

function tickText(t: number, first: boolean): string {
  const d = new Date(t);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return first || d.getHours() === 0 ? `${pad(d.getDate())}/${pad(d.getMonth() + 1)} ${hm}` : hm;
}

function unitOf(u: string | undefined): Unit {
  return u === '%' ? 'percent' : '';
}

function Detail({ c }: { c: Correlation }) {
  const at = nsToMs(c.timestamp_ns) ?? 0;
  const causeAt = nsToMs(c.data.cause?.time_ns);
  const a = c.data.anomaly ?? {};
  const unit = unitOf(a.unit);
  return (
    <div data-testid="correlation-detail" data-id={c.id}>
      <p class="corr-message">{c.message}</p>
      <dl class="facts small">
        <dt>Anomaly from</dt>
        <dd>
          <Time ms={at} />
        </dd>
        {a.resource ? (
          <>
            <dt>Resource</dt>
            <dd>
              <a href={resourcePath(a.resource)} onClick={linkClick}>
                {a.resource}
              </a>
            </dd>
          </>
        ) : null}
        {a.metric ? (
          <>
            <dt>Metric</dt>
            <dd>
              {a.metric} {a.direction ?? ''} from {formatValue(a.baseline_median, unit)}
              {unit ? '' : a.unit ?? ''} to {formatValue(a.peak_value, unit)}
              {unit ? '' : a.unit ?? ''}
              {a.score !== undefined ? ` (robust z-score ${a.score})` : ''}
            </dd>
          </>
        ) : null}
        {c.data.cause ? (
          <>
            <dt>Cause</dt>
            <dd>
              {c.data.cause.type ?? 'event'} “{c.data.cause.message ?? ''}”{causeAt !== null ? <> at <Time ms={causeAt} /></> : null}
            </dd>
          </>
        ) : null}
      </dl>
    </div>
  );
}

/** Correlations on a time axis over [start, end] (user's time zone; UTC in each marker's tooltip), one row
 * per resource: a diamond where the anomaly began, a ring at its cause, a line between them. Hover or focus
 * a marker for its details. */
export function CorrelationTimeline({ items, start, end }: { items: Correlation[]; start: number; end: number }) {
  const [shown, setShown] = useState<string | null>(null);
  const rows = useMemo(() => {
    const m = new Map<string, Correlation[]>();
    for (const c of items) {
      const k = c.data.anomaly?.resource ?? OTHER;
      m.set(k, [...(m.get(k) ?? []), c]);
    }
    return [...m.entries()].sort(([a], [b]) => a.localeCompare(b));
  }, [items]);
  const ticks = useMemo(() => timeTicks(start, end), [start, end]);
  const height = AXIS_H + rows.length * ROW_H + 8;
  const x = (t: number) => LABEL_W + Math.min(PLOT_W, Math.max(0, timeX(t, start, end, PLOT_W)));
  const current = items.find((c) => c.id === shown) ?? null;

  return (
    <div class="timeline-wrap">
      <div class="graph-scroll">
        <svg class="corr-timeline" width={LABEL_W + PLOT_W + 16} height={height} role="group" aria-label={`Correlations from ${formatLocal(start)} to ${formatLocal(end)}, by resource`} data-testid="timeline">
          <rect class="tl-plot" x={LABEL_W} y={AXIS_H - 6} width={PLOT_W} height={rows.length * ROW_H + 6} data-testid="timeline-plot" data-start-ms={start} data-end-ms={end} />
          <g class="tl-axis" aria-hidden="true">
            {ticks.map((t, i) => (
              <g key={t} data-tick-ms={t}>
                <line class="tl-grid" x1={x(t)} x2={x(t)} y1={AXIS_H - 6} y2={height - 8} />
                <text class="tl-tick" x={x(t)} y={AXIS_H - 12} text-anchor="middle">
                  <title>{formatUTC(t)}</title>
                  {tickText(t, i === 0)}
                </text>
              </g>
            ))}
          </g>
          {rows.map(([rid, cs], r) => {
            const y = AXIS_H + r * ROW_H + ROW_H / 2;
            return (
              <g key={rid} class="tl-row" data-row={rid}>
                <text class="tl-label" x={LABEL_W - 10} y={y + 4} text-anchor="end">
                  {rid.length > 24 ? `${rid.slice(0, 23)}…` : rid}
                </text>
                {cs.map((c) => {
                  const at = nsToMs(c.timestamp_ns) ?? start;
                  const causeAt = nsToMs(c.data.cause?.time_ns);
                  const ax = x(at);
                  const cx = causeAt !== null ? x(causeAt) : null;
                  return (
                    <g
                      key={c.id}
                      class={`tl-mark sev-${c.severity ?? 'medium'}${shown === c.id ? ' active' : ''}`}
                      role="button"
                      tabindex={0}
                      aria-label={`${formatLocal(at)}: ${c.message}`}
                      aria-expanded={shown === c.id}
                      data-id={c.id}
                      data-time-ms={at}
                      onMouseEnter={() => setShown(c.id)}
                      onFocus={() => setShown(c.id)}
                      onClick={() => setShown(c.id)}
                    >
                      <title>{`${formatUTC(at)}: ${c.message}`}</title>
                      {cx !== null ? <line class="tl-link" x1={cx} x2={ax} y1={y} y2={y} /> : null}
                      {cx !== null ? <circle class="tl-cause" cx={cx} cy={y} r={5} data-testid="timeline-cause" /> : null}
                      <path class="tl-anomaly" d={`M${ax},${y - 8} L${ax + 8},${y} L${ax},${y + 8} L${ax - 8},${y} Z`} data-testid="timeline-anomaly" />
                    </g>
                  );
                })}
              </g>
            );
          })}
        </svg>
      </div>
      <div class="corr-detail" aria-live="polite">
        {current ? <Detail c={current} /> : <p class="muted small">Hover or focus a marker (Tab) for its details: ◆ where the anomaly began, ○ its cause.</p>}
      </div>
    </div>
  );
}
