// Log lines as Loki answers them (streams of [ns, line]), listed newest first with level, labels and a JSON view.
import { useState } from 'preact/hooks';
import { Time } from './Time';

export interface Stream { stream: Record<string, string>; values: [string, string][] }
export interface Line { key: string; ns: string; ms: number; labels: Record<string, string>; line: string }

const LEVELS: Record<string, { cls: string; icon: string }> = {
  critical: { cls: 'lvl-error', icon: '✖' }, fatal: { cls: 'lvl-error', icon: '✖' }, error: { cls: 'lvl-error', icon: '✖' },
  err: { cls: 'lvl-error', icon: '✖' }, warn: { cls: 'lvl-warn', icon: '▲' }, warning: { cls: 'lvl-warn', icon: '▲' },
  info: { cls: 'lvl-info', icon: '●' }, debug: { cls: 'lvl-debug', icon: '○' }, trace: { cls: 'lvl-debug', icon: '○' },
};

export function levelOf(l: Line): string {
  return (l.labels.level ?? l.labels.detected_level ?? l.labels.severity ?? '').toLowerCase();
}

let seq = 0;
export function linesOf(streams: Stream[]): Line[] {
  const out: Line[] = [];
  for (const s of streams) for (const [ns, line] of s.values) out.push({ key: `${ns}-${seq++}`, ns, ms: Number(ns.slice(0, -6) || '0'), labels: s.stream, line });
  return out;
}

/** Newest first (nanosecond strings compare by length, then text). */
export function byNewest(a: Line, b: Line): number {
  return a.ns.length !== b.ns.length ? b.ns.length - a.ns.length : a.ns < b.ns ? 1 : a.ns > b.ns ? -1 : 0;
}

/** A line as pretty JSON when it is a JSON object, else null. */
function jsonOf(line: string): string | null {
  const t = line.trim();
  if (!t.startsWith('{')) return null;
  try {
    const v: unknown = JSON.parse(t);
    return v && typeof v === 'object' ? JSON.stringify(v, null, 2) : null;
  } catch {
    return null;
  }
}

export function LogRow({ l }: { l: Line }) {
  const [open, setOpen] = useState(false);
  const lvl = levelOf(l);
  const style = LEVELS[lvl];
  const json = open ? jsonOf(l.line) : null;
  return (
    <li class={`logrow ${style?.cls ?? ''}`} data-level={lvl || undefined}>
      <button type="button" class="logrow-head" aria-expanded={open} onClick={() => setOpen(!open)}>
        <span class="nowrap">
          <Time ms={l.ms} />
        </span>
        <span class="lvl nowrap">
          {lvl ? (
            <>
              <span aria-hidden="true">{style?.icon ?? '·'}</span> {lvl}
            </>
          ) : null}
        </span>
        <span class="mono logline">{l.line}</span>
      </button>
      {open ? (
        <div class="logrow-detail">
          <table class="table small">
            <caption class="sr-only">Labels of this line</caption>
            <tbody>
              {Object.entries(l.labels).map(([k, v]) => (
                <tr key={k}>
                  <th scope="row" class="mono">{k}</th>
                  <td class="mono">{v}</td>
                </tr>
              ))}
              <tr>
                <th scope="row">timestamp</th>
                <td class="mono">{l.ns} ns</td>
              </tr>
            </tbody>
          </table>
          {json ? <pre class="json mono" data-testid="json-view">{json}</pre> : null}
        </div>
      ) : null}
    </li>
  );
}
