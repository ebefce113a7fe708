import { formatDuration, fromLocalInput, parseDuration, toLocalInput } from '../time';

export interface Range {
  /** length in ms */
  range: number;
  /** end in ms, or null for "now" */
  end: number | null;
}

const CHOICES = ['5m', '15m', '30m', '1h', '3h', '6h', '12h', '1d', '2d', '7d'];

export function resolve(r: Range, now = Date.now()): { start: number; end: number } {
  const end = r.end ?? now;
  return { start: end - r.range, end };
}

export function TimeRangePicker({ value, onChange }: { value: Range; onChange: (r: Range) => void }) {
  const cur = formatDuration(value.range);
  const choices = CHOICES.includes(cur) ? CHOICES : [cur, ...CHOICES];
  const shift = (f: number) => {
    const { end } = resolve(value);
    const next = end + f * value.range;
    onChange({ range: value.range, end: next >= Date.now() ? null : next });
  };
  return (
    <fieldset class="timerange">
      <legend class="sr-only">Time range</legend>
      <button type="button" class="btn" onClick={() => shift(-0.5)} aria-label="Earlier (move back half the range)">
        ‹
      </button>
      <label>
        <span class="sr-only">Range</span>
        <select
          value={cur}
          onChange={(e) => {
            const ms = parseDuration(e.currentTarget.value);
            if (ms) onChange({ range: ms, end: value.end });
          }}
        >
          {choices.map((c) => (
            <option key={c} value={c}>
              Last {c}
            </option>
          ))}
        </select>
      </label>
      <label>
        <span class="muted">until</span>{' '}
        <input
          type="datetime-local"
          step={1}
          aria-label="End time (empty for now)"
          value={value.end === null ? '' : toLocalInput(value.end)}
          onChange={(e) => onChange({ range: value.range, end: e.currentTarget.value ? fromLocalInput(e.currentTarget.value) : null })}
        />
      </label>
      <button type="button" class="btn" onClick={() => shift(0.5)} aria-label="Later (move forward half the range)">
        ›
      </button>
      <button type="button" class="btn" onClick={() => onChange({ range: value.range * 2, end: value.end === null ? null : value.end + value.range / 2 })}>
        Zoom out
      </button>
      <button type="button" class="btn" disabled={value.end === null} onClick={() => onChange({ range: value.range, end: null })}>
        Now
      </button>
    </fieldset>
  );
}
