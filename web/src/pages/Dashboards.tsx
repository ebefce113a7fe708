import { useEffect, useMemo, useState } from 'preact/hooks';
import { getJSON, parseValue, promGet, seriesText, type QueryData } from '../api';
import { byNewest, linesOf, LogRow, type Stream } from '../components/LogLines';
import { QueryChart } from '../components/QueryChart';
import { ResultTable } from '../components/ResultTable';
import { Time } from '../components/Time';
import { resolve, TimeRangePicker, type Range } from '../components/TimeRange';
import {
  createDashboard,
  deleteDashboard,
  getDashboard,
  listDashboards,
  PANEL_TYPES,
  saveDashboard,
  substitute,
  UNITS,
  variableValues,
  type Dashboard,
  type Panel,
  type Summary,
  type Variable,
} from '../dashboards';
import { formatValue } from '../format';
import { linkClick, navigate, useLocation } from '../router';
import { useSettled } from '../settled';

const REFRESH_MS = 30_000;

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function idOf(pathname: string): string | null {
  const rest = pathname.replace(/^\/ui\/dashboards\/?/, '');
  return rest ? decodeURIComponent(rest) : null;
}

/** Dashboards (`/ui/dashboards`) and one dashboard (`/ui/dashboards/<id>`). */
export function DashboardsPage({ mayEdit }: { mayEdit: boolean }) {
  const loc = useLocation();
  const id = idOf(loc.pathname);
  return id ? <DashboardView key={id} id={id} mayEdit={mayEdit} /> : <DashboardList mayEdit={mayEdit} />;
}

function DashboardList({ mayEdit }: { mayEdit: boolean }) {
  const [items, setItems] = useState<Summary[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [title, setTitle] = useState('');
  useEffect(() => {
    const ctl = new AbortController();
    listDashboards(ctl.signal)
      .then(setItems)
      .catch((e: unknown) => {
        if (!ctl.signal.aborted) setError(errText(e));
      });
    return () => ctl.abort();
  }, []);
  const create = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      const d = await createDashboard({ title: title.trim(), panels: [], variables: [] });
      navigate(`/ui/dashboards/${d.id}?edit=1`);
    } catch (err) {
      setError(`The dashboard was not created: ${errText(err)}`);
    }
  };
  return (
    <section aria-labelledby="dash-title">
      <h1 id="dash-title">Dashboards</h1>
      {error ? (
        <p role="alert" class="error">
          {error}
        </p>
      ) : null}
      {mayEdit ? (
        <form class="card toolbar" onSubmit={create}>
          <label class="grow">
            New dashboard title
            <input value={title} required maxLength={200} onInput={(e) => setTitle(e.currentTarget.value)} placeholder="Web hosts" />
          </label>
          <button type="submit" class="btn primary" disabled={!title.trim()}>
            Create dashboard
          </button>
        </form>
      ) : null}
      <section class="card" aria-label="Saved dashboards">
        {items === null ? (
          error ? null : <p role="status">Loading…</p>
        ) : items.length === 0 ? (
          <p class="empty">
            No dashboards in this organisation yet.{' '}
            {mayEdit ? 'Give one a title above and add panels to it.' : 'Ask an editor to create one (it needs dashboards:manage).'}
          </p>
        ) : (
          <table class="table" data-testid="dashboards">
            <caption class="sr-only">Dashboards</caption>
            <thead>
              <tr>
                <th scope="col">Dashboard</th>
                <th scope="col">Panels</th>
                <th scope="col">Saved</th>
                <th scope="col">By</th>
              </tr>
            </thead>
            <tbody>
              {items.map((d) => (
                <tr key={d.id}>
                  <td>
                    <a href={`/ui/dashboards/${d.id}`} onClick={linkClick}>
                      {d.title}
                    </a>
                  </td>
                  <td class="num">{d.panels}</td>
                  <td>
                    <Time ms={d.updated * 1000} />
                  </td>
                  <td>{d.updated_by}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </section>
  );
}

/** One instant value per series (stat and gauge panels). */
function InstantPanel({ panel, query, range, tick }: { panel: Panel; query: string; range: Range; tick: number }) {
  const [data, setData] = useState<QueryData | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const ctl = new AbortController();
    setError(null);
    promGet<QueryData>('/api/v1/query', { query, time: resolve(range).end / 1000 }, ctl.signal)
      .then(setData)
      .catch((e: unknown) => {
        if (!ctl.signal.aborted) setError(errText(e));
      });
    return () => ctl.abort();
  }, [query, range.range, range.end, tick]);
  if (error) return <p role="alert" class="error">{error}</p>;
  if (!data) return <p role="status">Loading…</p>;
  if (panel.type === 'table') return <ResultTable data={data} at={resolve(range).end} />;
  const rows: { label: string; v: number }[] =
    data.resultType === 'vector'
      ? data.result.map((r) => ({ label: seriesText(r.metric), v: parseValue(r.value[1]) }))
      : data.resultType === 'scalar'
        ? [{ label: '', v: parseValue(data.result[1]) }]
        : [];
  if (!rows.length) return <p class="empty">No value. Check the query or the variables.</p>;
  return (
    <ul class="stats">
      {rows.slice(0, 12).map((r, i) => (
        <li key={i} class="stat">
          <span class="stat-value" data-testid="stat-value">
            {formatValue(r.v, panel.unit)}
          </span>
          {panel.type === 'gauge' ? (
            <meter min={0} max={panel.unit === 'percent' ? 100 : Math.max(1, ...rows.map((x) => x.v))} value={r.v} aria-label={`${panel.title} ${r.label}`} />
          ) : null}
          {r.label ? <span class="muted small mono">{r.label}</span> : null}
        </li>
      ))}
    </ul>
  );
}

function LogsPanel({ query, range, tick }: { query: string; range: Range; tick: number }) {
  const [streams, setStreams] = useState<Stream[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const ctl = new AbortController();
    const { start, end } = resolve(range);
    setError(null);
    getJSON<{ data: { result: Stream[] } }>(
      '/loki/api/v1/query_range',
      { query, start: (start / 1000).toFixed(3), end: (end / 1000).toFixed(3), limit: 100, direction: 'backward' },
      ctl.signal,
    )
      .then((r) => setStreams(r.data.result))
      .catch((e: unknown) => {
        if (!ctl.signal.aborted) setError(errText(e));
      });
    return () => ctl.abort();
  }, [query, range.range, range.end, tick]);
  const lines = useMemo(() => (streams ? linesOf(streams).sort(byNewest) : null), [streams]);
  if (error) return <p role="alert" class="error">{error}</p>;
  if (!lines) return <p role="status">Loading…</p>;
  if (!lines.length) return <p class="empty">No log lines in this range.</p>;
  return (
    <ol class="loglist panel-logs" aria-label="Log lines, newest first">
      {lines.map((l) => (
        <LogRow key={l.key} l={l} />
      ))}
    </ol>
  );
}

function PanelView({ panel, values, range, tick, index }: { panel: Panel; values: Record<string, string>; range: Range; tick: number; index: number }) {
  const query = substitute(panel.query, values);
  return (
    <section class={`card panel${panel.width === 2 ? ' wide' : ''}`} aria-label={panel.title} data-testid={`panel-${index}`} data-type={panel.type}>
      {panel.type === 'timeseries' ? (
        <QueryChart title={panel.title} query={query} range={range} unit={panel.unit} reload={tick} />
      ) : (
        <>
          <h2 class="h3">{panel.title}</h2>
          {panel.type === 'logs' ? <LogsPanel query={query} range={range} tick={tick} /> : <InstantPanel panel={panel} query={query} range={range} tick={tick} />}
        </>
      )}
    </section>
  );
}

const PREVIEW_SETTLE_MS = 500;
const NEW_PANEL: Panel = { title: 'New panel', type: 'timeseries', query: '', unit: '', width: 1 };

function Editor({ draft, setDraft }: { draft: Dashboard; setDraft: (d: Dashboard) => void }) {
  const setPanel = (i: number, p: Partial<Panel>) => setDraft({ ...draft, panels: draft.panels.map((x, j) => (j === i ? { ...x, ...p } : x)) });
  const setVar = (i: number, v: Partial<Variable>) => setDraft({ ...draft, variables: draft.variables.map((x, j) => (j === i ? { ...x, ...v } : x)) });
  const move = (i: number, d: number) => {
    const ps = [...draft.panels];
    const [p] = ps.splice(i, 1);
    if (p) ps.splice(i + d, 0, p);
    setDraft({ ...draft, panels: ps });
  };
  return (
    <div class="dash-editor" data-testid="dash-editor">
      <label class="wide-label">
        Title
        <input value={draft.title} maxLength={200} onInput={(e) => setDraft({ ...draft, title: e.currentTarget.value })} />
      </label>
      <h2 class="h3">Variables</h2>
      {draft.variables.map((v, i) => (
        <fieldset key={i} class="toolbar editor-row">
          <legend class="sr-only">Variable {i + 1}</legend>
          <label>
            Variable name
            <input class="mono" value={v.name} onInput={(e) => setVar(i, { name: e.currentTarget.value })} placeholder="host" />
          </label>
          <label>
            Values of label
            <input class="mono" value={v.label} onInput={(e) => setVar(i, { label: e.currentTarget.value })} placeholder="instance" />
          </label>
          <label class="grow">
            Of series (optional)
            <input class="mono" value={v.match} onInput={(e) => setVar(i, { match: e.currentTarget.value })} placeholder="node_uname_info" />
          </label>
          <button type="button" class="btn" onClick={() => setDraft({ ...draft, variables: draft.variables.filter((_x, j) => j !== i) })}>
            Remove variable {v.name}
          </button>
        </fieldset>
      ))}
      <button type="button" class="btn" onClick={() => setDraft({ ...draft, variables: [...draft.variables, { name: '', label: '', match: '' }] })}>
        Add variable
      </button>
      <h2 class="h3">Panels</h2>
      {draft.panels.map((p, i) => (
        <fieldset key={i} class="editor-row card" data-testid={`edit-panel-${i}`}>
          <legend>Panel {i + 1}</legend>
          <div class="toolbar">
            <label class="grow">
              Panel title
              <input value={p.title} onInput={(e) => setPanel(i, { title: e.currentTarget.value })} />
            </label>
            <label>
              Type
              <select value={p.type} onChange={(e) => setPanel(i, { type: e.currentTarget.value as Panel['type'] })}>
                {PANEL_TYPES.map((t) => (
                  <option key={t} value={t}>
                    {t}
                  </option>
                ))}
              </select>
            </label>
            <label>
              Unit
              <select value={p.unit} onChange={(e) => setPanel(i, { unit: e.currentTarget.value as Panel['unit'] })}>
                {UNITS.map((u) => (
                  <option key={u} value={u}>
                    {u || 'none'}
                  </option>
                ))}
              </select>
            </label>
            <label>
              Width
              <select value={String(p.width)} onChange={(e) => setPanel(i, { width: e.currentTarget.value === '2' ? 2 : 1 })}>
                <option value="1">half</option>
                <option value="2">full</option>
              </select>
            </label>
          </div>
          <label class="wide-label">
            {p.type === 'logs' ? 'LogQL query' : 'PromQL query'} ($name inserts a variable)
            <textarea class="mono" rows={2} value={p.query} onInput={(e) => setPanel(i, { query: e.currentTarget.value })} />
          </label>
          <div class="toolbar">
            <button type="button" class="btn" disabled={i === 0} onClick={() => move(i, -1)}>
              Move up
            </button>
            <button type="button" class="btn" disabled={i === draft.panels.length - 1} onClick={() => move(i, 1)}>
              Move down
            </button>
            <button type="button" class="btn" onClick={() => setDraft({ ...draft, panels: draft.panels.filter((_x, j) => j !== i) })}>
              Remove panel
            </button>
          </div>
        </fieldset>
      ))}
      <button type="button" class="btn" onClick={() => setDraft({ ...draft, panels: [...draft.panels, { ...NEW_PANEL }] })}>
        Add panel
      </button>
    </div>
  );
}

function DashboardView({ id, mayEdit }: { id: string; mayEdit: boolean }) {
  const params = new URLSearchParams(location.search);
  const [dash, setDash] = useState<Dashboard | null>(null);
  const [draft, setDraft] = useState<Dashboard | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [range, setRange] = useState<Range>({ range: 3600_000, end: null });
  const [options, setOptions] = useState<Record<string, string[]>>({});
  const [values, setValues] = useState<Record<string, string>>({});
  const [tick, setTick] = useState(0);

  useEffect(() => {
    const ctl = new AbortController();
    getDashboard(id, ctl.signal)
      .then((d) => {
        setDash(d);
        if (mayEdit && params.get('edit') === '1') setDraft(d);
      })
      .catch((e: unknown) => {
        if (!ctl.signal.aborted) setError(errText(e));
      });
    return () => ctl.abort();
  }, [id]);

  const variables = dash?.variables ?? [];
  useEffect(() => {
    const ctl = new AbortController();
    for (const v of variables) {
      variableValues(v, ctl.signal)
        .then((vals) => {
          setOptions((o) => ({ ...o, [v.name]: vals }));
          setValues((cur) => (cur[v.name] !== undefined && vals.includes(cur[v.name] ?? '') ? cur : { ...cur, [v.name]: vals[0] ?? '' }));
        })
        .catch(() => setOptions((o) => ({ ...o, [v.name]: [] })));
    }
    return () => ctl.abort();
  }, [dash?.version, JSON.stringify(variables)]);

  useEffect(() => {
    const t = window.setInterval(() => setTick((n) => n + 1), REFRESH_MS);
    return () => clearInterval(t);
  }, []);

  const save = async () => {
    if (!draft) return;
    setError(null);
    try {
      const d = await saveDashboard(draft);
      setDash(d);
      setDraft(null);
      setNotice(`Saved (version ${d.version}).`);
      navigate(`/ui/dashboards/${d.id}`, true);
    } catch (e) {
      setError(`Not saved: ${errText(e)}`);
    }
  };
  const remove = async () => {
    if (!dash || !confirm(`Delete the dashboard "${dash.title}"? This cannot be undone.`)) return;
    try {
      await deleteDashboard(dash.id);
      navigate('/ui/dashboards');
    } catch (e) {
      setError(`Not deleted: ${errText(e)}`);
    }
  };

  // While editing, the panels preview the draft as it was when typing paused (no query per keystroke).
  const settledDraft = useSettled(draft, PREVIEW_SETTLE_MS);
  const shown = draft ? settledDraft ?? draft : dash;
  return (
    <section aria-labelledby="dashboard-title">
      <p class="small">
        <a href="/ui/dashboards" onClick={linkClick}>
          ← All dashboards
        </a>
      </p>
      <div class="page-head">
        <h1 id="dashboard-title">{dash?.title ?? 'Dashboard'}</h1>
        <div class="toolbar">
          <TimeRangePicker value={range} onChange={setRange} />
          {mayEdit && dash && !draft ? (
            <button type="button" class="btn" onClick={() => setDraft(dash)}>
              Edit
            </button>
          ) : null}
        </div>
      </div>
      {error ? (
        <p role="alert" class="error">
          {error.includes('not found') ? `There is no dashboard ${id} in this organisation.` : error}
        </p>
      ) : null}
      {notice ? (
        <p role="status" class="notice">
          {notice}
        </p>
      ) : null}
      {draft ? (
        <section class="card" aria-label="Edit dashboard">
          <Editor draft={draft} setDraft={setDraft} />
          <div class="toolbar editor-actions">
            <button type="button" class="btn primary" onClick={() => void save()}>
              Save dashboard
            </button>
            <button type="button" class="btn" onClick={() => setDraft(null)}>
              Cancel
            </button>
            <button type="button" class="btn danger" onClick={() => void remove()}>
              Delete dashboard
            </button>
          </div>
        </section>
      ) : null}
      {shown && shown.variables.length ? (
        <form class="card toolbar" aria-label="Variables" onSubmit={(e) => e.preventDefault()}>
          {shown.variables.map((v) => (
            <label key={v.name}>
              {v.name}
              <select aria-label={`Variable ${v.name}`} value={values[v.name] ?? ''} onChange={(e) => setValues({ ...values, [v.name]: e.currentTarget.value })}>
                {(options[v.name] ?? []).map((o) => (
                  <option key={o} value={o}>
                    {o}
                  </option>
                ))}
              </select>
            </label>
          ))}
        </form>
      ) : null}
      {!shown ? (
        error ? null : <p role="status">Loading…</p>
      ) : shown.panels.length === 0 ? (
        <p class="empty card">This dashboard has no panels yet.{mayEdit ? ' Edit it and add one.' : ''}</p>
      ) : (
        <div class="panels" data-testid="panels">
          {shown.panels.map((p, i) =>
            p.query.trim() ? <PanelView key={`${i}-${p.type}-${p.query}`} panel={p} values={values} range={range} tick={tick} index={i} /> : null,
          )}
        </div>
      )}
    </section>
  );
}
