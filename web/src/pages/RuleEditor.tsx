import { useEffect, useState } from 'preact/hooks';
import { ApiError, csrfToken, promGet, type QueryData } from '../api';
import { ResultTable } from '../components/ResultTable';

const TEMPLATE = `groups:
- name: example
  interval: 1m
  rules:
  - alert: HighMemory
    expr: 100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes) > 90
    for: 5m
    labels: {severity: warning}
    annotations: {summary: "memory above 90 % on {{ $labels.instance }}"}
`;

/** A rule group's namespace when it was written through the rules API (`<data>/rules/api/<tenant>/<ns>.yml`). */
export function apiNamespaceOf(file: string): string | null {
  const m = /\/rules\/api\/[^/]+\/([^/]+)\.yml$/.exec(file);
  return m ? (m[1] ?? null) : null;
}

async function send(method: 'PUT' | 'DELETE', ns: string, body?: string): Promise<void> {
  const resp = await fetch(`/api/v1/rules/${encodeURIComponent(ns)}`, {
    method,
    headers: { 'Content-Type': 'application/yaml', Accept: 'application/json', 'X-CSRF-Token': csrfToken() },
    credentials: 'same-origin',
    body,
  });
  if (!resp.ok) {
    let msg = `${resp.status} ${resp.statusText}`;
    try {
      const b = (await resp.json()) as { error?: string };
      msg = b.error ?? msg;
    } catch {
      /* keep the status */
    }
    throw new ApiError(msg, resp.status);
  }
}

/** Create and edit rule groups through the rules API (`GET|PUT|DELETE /api/v1/rules/{namespace}`, rules:manage):
 * a namespace's rule file as YAML, checked by the server (a refusal names the group, rule and field and
 * changes nothing), and a test of an expression against the current data. */
export function RuleEditor({ load, onSaved }: { load: { ns: string; key: number } | null; onSaved: () => void }) {
  const [ns, setNs] = useState(load?.ns ?? 'ui');
  const [text, setText] = useState('');
  const [state, setState] = useState<{ ok: boolean; text: string } | null>(null);
  const [expr, setExpr] = useState('');
  const [test, setTest] = useState<{ data: QueryData | null; error: string | null; at: number } | null>(null);

  const fetchNs = async (name: string) => {
    setState(null);
    try {
      const resp = await fetch(`/api/v1/rules/${encodeURIComponent(name)}`, { headers: { Accept: 'application/yaml' }, credentials: 'same-origin' });
      if (resp.status === 404) {
        setText(TEMPLATE);
        setState({ ok: true, text: `No namespace "${name}" yet: this is a template, saving creates it.` });
      } else if (!resp.ok) setState({ ok: false, text: `Cannot load "${name}": ${resp.status}` });
      else setText(await resp.text());
    } catch (e) {
      setState({ ok: false, text: String(e) });
    }
  };

  useEffect(() => {
    if (load) {
      setNs(load.ns);
      void fetchNs(load.ns);
    }
  }, [load?.key]);

  const save = async () => {
    setState(null);
    try {
      await send('PUT', ns, text);
      setState({ ok: true, text: `Saved namespace "${ns}". The rules are evaluated from their next interval.` });
      onSaved();
    } catch (e) {
      setState({ ok: false, text: `Not saved (nothing changed): ${e instanceof Error ? e.message : String(e)}` });
    }
  };
  const remove = async () => {
    if (!confirm(`Delete every rule group of namespace "${ns}"?`)) return;
    try {
      await send('DELETE', ns);
      setText('');
      setState({ ok: true, text: `Deleted namespace "${ns}".` });
      onSaved();
    } catch (e) {
      setState({ ok: false, text: `Not deleted: ${e instanceof Error ? e.message : String(e)}` });
    }
  };
  const runTest = async (e: Event) => {
    e.preventDefault();
    const at = Date.now();
    try {
      setTest({ data: await promGet<QueryData>('/api/v1/query', { query: expr, time: at / 1000 }), error: null, at });
    } catch (err) {
      setTest({ data: null, error: err instanceof Error ? err.message : String(err), at });
    }
  };

  return (
    <section class="card" aria-labelledby="rule-editor-title" data-testid="rule-editor">
      <h2 id="rule-editor-title">Edit rules</h2>
      <div class="toolbar">
        <label>
          Namespace
          <input class="mono" value={ns} onInput={(e) => setNs(e.currentTarget.value)} />
        </label>
        <button type="button" class="btn" onClick={() => void fetchNs(ns)}>
          Load
        </button>
      </div>
      <label class="wide-label">
        Rule file (YAML, Prometheus format)
        <textarea class="mono rule-text" rows={14} value={text} onInput={(e) => setText(e.currentTarget.value)} spellcheck={false} />
      </label>
      <div class="toolbar">
        <button type="button" class="btn primary" disabled={!text.trim()} onClick={() => void save()}>
          Save namespace
        </button>
        <button type="button" class="btn danger" onClick={() => void remove()}>
          Delete namespace
        </button>
      </div>
      {state ? (
        <p role={state.ok ? 'status' : 'alert'} class={state.ok ? 'notice' : 'error pre'} data-testid="rule-editor-status">
          {state.text}
        </p>
      ) : null}
      <form class="toolbar rule-test" onSubmit={runTest}>
        <label class="grow">
          Test an expression now
          <input class="mono wide" value={expr} onInput={(e) => setExpr(e.currentTarget.value)} placeholder="node_load1 > 4" />
        </label>
        <button type="submit" class="btn" disabled={!expr.trim()}>
          Test
        </button>
      </form>
      {test ? (
        test.error ? (
          <p role="alert" class="error">
            {test.error}
          </p>
        ) : test.data ? (
          <div data-testid="rule-test-result">
            <ResultTable data={test.data} at={test.at} />
            <p class="muted small">An alerting rule fires for each series listed (after its "for" duration).</p>
          </div>
        ) : null
      ) : null}
    </section>
  );
}
