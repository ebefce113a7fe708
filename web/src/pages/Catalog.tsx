import { useEffect, useState } from 'preact/hooks';
import { promGet } from '../api';

interface LabelInfo { values: string[]; count: number; truncated: boolean }
interface CatalogEntry { series: number; labels: Record<string, LabelInfo>; type?: string; help?: string; unit?: string }
interface Meta { type: string; help: string; unit?: string }

/** Metric catalog browser: every metric name with its type and help; a metric's labels and values on demand. */
export function Catalog({ onUse }: { onUse: (name: string) => void }) {
  const [open, setOpen] = useState(false);
  const [names, setNames] = useState<string[] | null>(null);
  const [meta, setMeta] = useState<Record<string, Meta[]>>({});
  const [filter, setFilter] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [detail, setDetail] = useState<CatalogEntry | null>(null);

  useEffect(() => {
    if (!open || names) return;
    Promise.all([
      promGet<string[]>('/api/v1/label/__name__/values'),
      promGet<Record<string, Meta[]>>('/api/v1/metadata').catch(() => ({})),
    ])
      .then(([n, m]) => {
        setNames(n);
        setMeta(m);
      })
      .catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  }, [open]);

  useEffect(() => {
    if (!selected) return;
    setDetail(null);
    promGet<Record<string, CatalogEntry>>('/api/v1/catalog', { 'match[]': `{__name__=${JSON.stringify(selected)}}`, values_limit: 50 })
      .then((c) => setDetail(c[selected] ?? { series: 0, labels: {} }))
      .catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  }, [selected]);

  const f = filter.trim().toLowerCase();
  const shown = (names ?? []).filter((n) => !f || n.toLowerCase().includes(f)).slice(0, 500);

  return (
    <details class="card catalog" onToggle={(e) => setOpen((e.currentTarget as HTMLDetailsElement).open)}>
      <summary>
        <h2 class="h3 inline">Metric catalog</h2>
      </summary>
      {error ? <p role="alert" class="error">{error}</p> : null}
      {names === null && !error ? <p role="status">Loading metric names…</p> : null}
      {names !== null ? (
        <div class="catalog-body">
          <div>
            <label>
              Filter metrics{' '}
              <input type="search" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} placeholder="e.g. node_cpu" />
            </label>
            <p class="muted small">
              {names.length} metrics{shown.length < names.length ? `, ${shown.length} shown` : ''}
            </p>
            <ul class="catalog-list">
              {shown.map((n) => (
                <li key={n}>
                  <button type="button" class={n === selected ? 'link selected' : 'link'} aria-pressed={n === selected} onClick={() => setSelected(n)}>
                    {n}
                  </button>{' '}
                  <span class="muted small">{meta[n]?.[0]?.type ?? ''}</span>
                </li>
              ))}
            </ul>
          </div>
          <div class="catalog-detail" aria-live="polite">
            {selected ? (
              <>
                <h3 class="mono">{selected}</h3>
                <p>{meta[selected]?.[0]?.help || detail?.help || <span class="muted">No help text.</span>}</p>
                <p class="muted small">
                  Type: {meta[selected]?.[0]?.type ?? detail?.type ?? 'unknown'}
                  {detail ? ` · ${detail.series} series` : ''}
                </p>
                <button type="button" class="btn primary" onClick={() => onUse(selected)}>
                  Query {selected}
                </button>
                {detail ? (
                  <table class="table">
                    <caption class="sr-only">Labels of {selected}</caption>
                    <thead>
                      <tr>
                        <th scope="col">Label</th>
                        <th scope="col">Values</th>
                      </tr>
                    </thead>
                    <tbody>
                      {Object.entries(detail.labels).map(([k, info]) => (
                        <tr key={k}>
                          <td class="mono">{k}</td>
                          <td class="mono small">
                            {info.values.join(', ')}
                            {info.truncated ? ` … (${info.count} values)` : ''}
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                ) : (
                  <p role="status">Loading labels…</p>
                )}
              </>
            ) : (
              <p class="muted">Pick a metric to see its labels and values.</p>
            )}
          </div>
        </div>
      ) : null}
    </details>
  );
}
