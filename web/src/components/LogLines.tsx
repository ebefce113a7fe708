// Log lines as Loki answers them (streams of [ns, line]), listed newest first with level, labels and a JSON view.
import { useEffect, useState } from 'preact/hooks';
import { getJSON } from '../api';
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
  const [context, setContext] = useState(false);
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
          {traceIdOf(l.line) ? <TraceLines id={traceIdOf(l.line) ?? ''} /> : null}
          {context ? (
            <LogContext l={l} />
          ) : (
            <button type="button" class="btn" onClick={() => setContext(true)}>
              Show context
            </button>
          )}
        </div>
      ) : null}
    </li>
  );
}

interface ContextEntry { ts: string; line: string }
const AROUND = 10;

/** The lines just before and after a line of the same stream (`GET /api/v1/logs/context`), with a filter of
 * their own (lines containing a text). */
function LogContext({ l }: { l: Line }) {
  const [text, setText] = useState('');
  const [applied, setApplied] = useState('');
  const [data, setData] = useState<{ before: ContextEntry[]; at: ContextEntry[]; after: ContextEntry[] } | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const ctl = new AbortController();
    setError(null);
    getJSON<{ data: { before: ContextEntry[]; at: ContextEntry[]; after: ContextEntry[] } }>(
      '/api/v1/logs/context',
      { stream: JSON.stringify(l.labels), ts: l.ns, before: AROUND, after: AROUND, text: applied || undefined },
      ctl.signal,
    )
      .then((r) => setData(r.data))
      .catch((e: unknown) => {
        if (!ctl.signal.aborted) setError(e instanceof Error ? e.message : String(e));
      });
    return () => ctl.abort();
  }, [applied]);
  const row = (e: ContextEntry, cls: string) => (
    <li key={`${cls}-${e.ts}-${e.line}`} class={cls}>
      <span class="nowrap muted">
        <Time ms={Number(e.ts.slice(0, -6) || '0')} />
      </span>{' '}
      <span class="mono logline">{e.line}</span>
    </li>
  );
  return (
    <section class="log-context" aria-label="Context of this line" data-testid="log-context">
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(text);
        }}
      >
        <label class="grow">
          Context lines containing
          <input value={text} onInput={(e) => setText(e.currentTarget.value)} placeholder="any text" />
        </label>
        <button type="submit" class="btn">
          Filter context
        </button>
      </form>
      {error ? (
        <p role="alert" class="error">
          {error}
        </p>
      ) : !data ? (
        <p role="status">Loading…</p>
      ) : (
        <ol class="context-lines">
          {data.before.map((e) => row(e, 'ctx-before'))}
          {data.at.map((e) => row(e, 'ctx-at'))}
          {data.after.map((e) => row(e, 'ctx-after'))}
        </ol>
      )}
    </section>
  );
}

const TRACE_IN_TEXT = /(?:trace[_-]?id|traceid)["'=:\s]+([0-9a-fA-F]{32})\b/i;

/** A trace id named in a line (`trace_id=...`, `"traceId": "..."`), lower case, or null. */
export function traceIdOf(line: string): string | null {
  const m = TRACE_IN_TEXT.exec(line);
  return m ? (m[1] ?? '').toLowerCase() : null;
}

interface NativeEntry { ts: string; stream: Record<string, string>; line: string; trace_id?: string }

/** Every line of the last 6 h, from any stream, that carries a trace id: in its text, or as the OTLP
 * trace id of the record (`GET /api/v1/logs?text=` and `?trace_id=`). */
function TraceLines({ id }: { id: string }) {
  const [open, setOpen] = useState(false);
  const [rows, setRows] = useState<NativeEntry[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (!open) return undefined;
    const ctl = new AbortController();
    const get = (params: Record<string, string>) =>
      getJSON<{ data: { entries: NativeEntry[] } }>('/api/v1/logs', { ...params, since: '6h', limit: 200, sort: 'asc' }, ctl.signal).then((r) => r.data.entries);
    Promise.all([get({ text: id }), get({ trace_id: id })])
      .then(([a, b]) => {
        const seen = new Set<string>();
        const all = [...a, ...b].filter((e) => {
          const k = `${e.ts}|${e.line}`;
          if (seen.has(k)) return false;
          seen.add(k);
          return true;
        });
        all.sort((x, y) => (x.ts.length !== y.ts.length ? x.ts.length - y.ts.length : x.ts < y.ts ? -1 : x.ts > y.ts ? 1 : 0));
        setRows(all);
      })
      .catch((e: unknown) => {
        if (!ctl.signal.aborted) setError(e instanceof Error ? e.message : String(e));
      });
    return () => ctl.abort();
  }, [open, id]);
  if (!open)
    return (
      <p>
        <button type="button" class="btn" onClick={() => setOpen(true)}>
          Lines of trace <span class="mono">{id}</span>
        </button>
      </p>
    );
  return (
    <section class="log-context" aria-label={`Lines of trace ${id}`} data-testid="trace-lines">
      <h3 class="h3">
        Trace <span class="mono">{id}</span>: lines of the last 6 h, oldest first, from every stream
      </h3>
      {error ? (
        <p role="alert" class="error">
          {error}
        </p>
      ) : !rows ? (
        <p role="status">Loading…</p>
      ) : (
        <ol class="context-lines">
          {rows.map((e) => (
            <li key={`${e.ts}|${e.line}`}>
              <span class="nowrap muted">
                <Time ms={Number(e.ts.slice(0, -6) || '0')} />
              </span>{' '}
              <span class="mono small">{Object.entries(e.stream).map(([k, v]) => `${k}=${v}`).join(', ')}</span>{' '}
              <span class="mono logline">{e.line}</span>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
