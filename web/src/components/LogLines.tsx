// Log lines as Loki answers them (streams of [ns, line]), listed newest first with level, labels and a JSON view,
// in a windowed list (LogList) that keeps only the rows in and near its viewport in the page.
import type { JSX } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
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

/** One line; ``open``/``onToggle`` let a list keep the expanded state (LogList drops rows that scroll far
 * out of view and renders them again later), without them the row keeps it itself. */
export function LogRow({ l, open: openProp, onToggle, index, of }: { l: Line; open?: boolean; onToggle?: (key: string) => void; index?: number; of?: number }) {
  const [openOwn, setOpenOwn] = useState(false);
  const [context, setContext] = useState(false);
  const open = openProp ?? openOwn;
  const lvl = levelOf(l);
  const style = LEVELS[lvl];
  const json = open ? jsonOf(l.line) : null;
  return (
    <li class={`logrow ${style?.cls ?? ''}`} data-level={lvl || undefined} data-key={l.key} data-index={index}
      aria-posinset={index === undefined ? undefined : index + 1} aria-setsize={of}>
      <button type="button" class="logrow-head" aria-expanded={open} onClick={() => (onToggle ? onToggle(l.key) : setOpenOwn(!open))}>
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

/** A collapsed row's height before it is measured (px); measured heights replace it row by row. */
const ROW_ESTIMATE = 27;
/** Rows this far (px) above and below the viewport stay in the page, so fast scrolling shows no blank. */
const OVERSCAN = 600;
/** Shorter lists are rendered whole (no windowing): the browser's find-in-page then sees every line. */
export const WINDOW_FROM = 150;

/** Index of the last row starting at or before ``y`` (``starts`` ascending, one entry per row plus the end). */
function rowAt(starts: Float64Array, n: number, y: number): number {
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((starts[mid] ?? 0) <= y) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The lines in a scrolling box, windowed from ``WINDOW_FROM`` lines: only the rows within ``OVERSCAN`` px of
 * the viewport are in the page, the rest is padding of the list computed from the row heights (measured with a
 * ResizeObserver once a row was shown, estimated before), so expanded JSON rows and their context keep their
 * real height. Arrow keys, Page Up/Down, Home and End move the focus between rows, rendering the row first. */
export function LogList({ lines, label }: { lines: Line[]; label: string }) {
  const [open, setOpen] = useState<ReadonlySet<string>>(() => new Set());
  const [view, setView] = useState({ top: 0, height: 800 });
  const [, setMeasured] = useState(0);
  const box = useRef<HTMLDivElement>(null);
  const heights = useRef(new Map<string, number>());
  const focusKey = useRef<string | null>(null);
  const observer = useRef<ResizeObserver | null>(null);
  const anchor = useRef<{ first: string | null; scrollTo: number | null }>({ first: null, scrollTo: null });

  const n = lines.length;
  const starts = new Float64Array(n + 1);
  let y = 0;
  for (let i = 0; i < n; i++) {
    starts[i] = y;
    y += heights.current.get((lines[i] as Line).key) ?? ROW_ESTIMATE;
  }
  starts[n] = y;
  const windowed = n >= WINDOW_FROM;
  // Lines prepended (a live tail) while the user reads further down: keep the rows being read in place by
  // moving the scroll position down by the new rows' height (the browser's own anchoring is off: the rows in
  // the page change with the window).
  let top = view.top;
  const firstKey = n ? (lines[0] as Line).key : null;
  if (anchor.current.first !== null && firstKey !== anchor.current.first && view.top > 0) {
    const k = lines.findIndex((l) => l.key === anchor.current.first);
    if (k > 0) {
      top += starts[k] ?? 0;
      anchor.current.scrollTo = top;
    }
  }
  anchor.current.first = firstKey;
  const first = windowed ? rowAt(starts, n, top - OVERSCAN) : 0;
  const last = windowed ? rowAt(starts, n, top + view.height + OVERSCAN) : n - 1;

  useEffect(() => {
    const ro = new ResizeObserver((entries) => {
      let changed = false;
      for (const e of entries) {
        const el = e.target as HTMLElement;
        const key = el.dataset.key;
        const h = el.offsetHeight;
        if (key && h && heights.current.get(key) !== h) {
          heights.current.set(key, h);
          changed = true;
        }
      }
      if (changed) setMeasured((v) => v + 1);
    });
    observer.current = ro;
    const el = box.current;
    const onResize = () => el && setView({ top: el.scrollTop, height: el.clientHeight });
    onResize();
    window.addEventListener('resize', onResize);
    return () => {
      ro.disconnect();
      window.removeEventListener('resize', onResize);
    };
  }, []);

  useLayoutEffect(() => {
    const el = box.current;
    const ro = observer.current;
    if (!el || !ro) return;
    if (heights.current.size > 2 * n + 1000) {
      // a long live tail drops its oldest lines: forget their heights too
      const keep = new Set(lines.map((l) => l.key));
      for (const k of heights.current.keys()) if (!keep.has(k)) heights.current.delete(k);
    }
    if (anchor.current.scrollTo !== null) {
      el.scrollTop = anchor.current.scrollTo;
      anchor.current.scrollTo = null;
      setView({ top: el.scrollTop, height: el.clientHeight });
    }
    ro.disconnect();
    el.querySelectorAll<HTMLElement>('li.logrow').forEach((li) => ro.observe(li));
    if (focusKey.current) {
      el.querySelector<HTMLElement>(`li.logrow[data-key="${focusKey.current}"] > .logrow-head`)?.focus();
      focusKey.current = null;
    }
  });

  const toggle = (key: string) =>
    setOpen((prev) => {
      const next = new Set(prev);
      if (!next.delete(key)) next.add(key);
      return next;
    });

  /** Focuses row ``i``: scrolls it into the box first (rendering it), then focuses it after that render. */
  const focusRow = (i: number) => {
    const el = box.current;
    const target = Math.max(0, Math.min(n - 1, i));
    if (!el || !n) return;
    const top = starts[target] ?? 0;
    const bottom = starts[target + 1] ?? top;
    let scroll = el.scrollTop;
    if (top < scroll) scroll = top;
    else if (bottom > scroll + el.clientHeight) scroll = bottom - el.clientHeight;
    el.scrollTop = scroll;
    focusKey.current = (lines[target] as Line).key;
    setView({ top: el.scrollTop, height: el.clientHeight });
  };

  const onKeyDown = (e: JSX.TargetedKeyboardEvent<HTMLOListElement>) => {
    const t = e.target as HTMLElement;
    if (!t.classList.contains('logrow-head')) return;
    const i = Number((t.parentElement as HTMLElement).dataset.index);
    const page = Math.max(1, Math.floor((box.current?.clientHeight ?? 0) / ROW_ESTIMATE) - 1);
    const to = { ArrowDown: i + 1, ArrowUp: i - 1, PageDown: i + page, PageUp: i - page, Home: 0, End: n - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    focusRow(to);
  };

  return (
    <div
      class="logscroll"
      ref={box}
      data-testid="log-scroll"
      data-windowed={windowed ? 'true' : 'false'}
      onScroll={(e) => {
        const top = e.currentTarget.scrollTop;
        const height = e.currentTarget.clientHeight;
        // within a third of the overscan the rendered rows still cover the viewport: no render
        setView((v) => (windowed && Math.abs(v.top - top) < OVERSCAN / 3 && v.height === height ? v : { top, height }));
      }}
    >
      <ol
        class="loglist"
        data-testid="log-lines"
        aria-label={label}
        onKeyDown={onKeyDown}
        style={{ paddingTop: `${starts[first] ?? 0}px`, paddingBottom: `${(starts[n] ?? 0) - (starts[last + 1] ?? 0)}px` }}
      >
        {lines.slice(first, last + 1).map((l, j) => (
          <LogRow key={l.key} l={l} index={first + j} open={open.has(l.key)} onToggle={toggle} of={n} />
        ))}
      </ol>
    </div>
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
