// Small typed client for Clearsight's HTTP API (same origin; nothing else is contacted).

export type Metric = Record<string, string>;
export interface MatrixItem { metric: Metric; values: [number, string][] }
export interface VectorItem { metric: Metric; value: [number, string] }
export type QueryData =
  | { resultType: 'matrix'; result: MatrixItem[] }
  | { resultType: 'vector'; result: VectorItem[] }
  | { resultType: 'scalar' | 'string'; result: [number, string] };

export class ApiError extends Error {
  constructor(message: string, readonly status: number, readonly errorType = '') {
    super(message);
  }
}

type Params = Record<string, string | string[] | number | undefined>;

export function withParams(path: string, params: Params = {}): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) u.append(k, String(one));
  }
  const qs = u.toString();
  return qs ? `${path}?${qs}` : path;
}

async function errorOf(resp: Response): Promise<ApiError> {
  let message = `${resp.status} ${resp.statusText}`;
  let errorType = '';
  try {
    const body = (await resp.json()) as { error?: string; errorType?: string; message?: string } | string;
    if (typeof body === 'string') message = body; // Alertmanager's API answers errors as a JSON string
    else {
      message = body.error ?? body.message ?? message;
      errorType = body.errorType ?? '';
    }
  } catch {
    /* not JSON: keep the status line */
  }
  return new ApiError(message, resp.status, errorType);
}

/** GET a Prometheus-enveloped endpoint and return its `data`. */
export async function promGet<T>(path: string, params: Params = {}, signal?: AbortSignal): Promise<T> {
  const resp = await fetch(withParams(path, params), {
    headers: { Accept: 'application/json' },
    credentials: 'same-origin',
    signal,
  });
  if (!resp.ok) throw await errorOf(resp);
  const body = (await resp.json()) as { status: string; data: T; error?: string; errorType?: string };
  if (body.status !== 'success') throw new ApiError(body.error ?? 'request failed', resp.status, body.errorType);
  return body.data;
}

/** GET plain JSON (no envelope). */
export async function getJSON<T>(path: string, params: Params = {}, signal?: AbortSignal): Promise<T> {
  const resp = await fetch(withParams(path, params), {
    headers: { Accept: 'application/json' },
    credentials: 'same-origin',
    signal,
  });
  if (!resp.ok) throw await errorOf(resp);
  return (await resp.json()) as T;
}

/** The session's CSRF token (cookie `clearsight_csrf`, set at login; docs/security.md "CSRF"). */
export function csrfToken(): string {
  const m = document.cookie.match(/(?:^|;\s*)clearsight_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : '';
}

/** A state-changing request with a JSON body (or none), the CSRF header, and the error as ApiError. */
export async function sendJSON<T>(method: 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const resp = await fetch(path, {
    method,
    headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRF-Token': csrfToken() },
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!resp.ok) throw await errorOf(resp);
  const doc = (await resp.json()) as ({ data?: T } & T) | null;
  return (doc?.data ?? doc) as T;
}

export async function postJSON(path: string, body: unknown): Promise<Response> {
  return fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRF-Token': csrfToken() },
    credentials: 'same-origin',
    body: JSON.stringify(body),
  });
}

export function metricName(m: Metric): string {
  return m.__name__ ?? '';
}

/** `name{a="b", c="d"}` like Prometheus prints a series. */
export function seriesText(m: Metric): string {
  const labels = Object.entries(m)
    .filter(([k]) => k !== '__name__')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  const name = metricName(m);
  return labels.length ? `${name}{${labels.join(', ')}}` : name || '{}';
}

/** `a=b, c=d` (the labels not in `skip`). */
export function labelsText(labels: Record<string, string>, skip: string[] = []): string {
  return Object.entries(labels)
    .filter(([k]) => !skip.includes(k))
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}

/** An alert as /api/v1/alerts answers it. */
export interface Alert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: string;
  activeAt?: string;
  value?: string;
}

export function parseValue(s: string): number {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  return Number(s);
}
