// Saved dashboards (GET/POST /api/v1/dashboards, GET/PUT/DELETE /api/v1/dashboards/{id}); docs/ui.md.
import type { Unit } from './format';
import { promGet, sendJSON } from './api';

export type PanelType = 'timeseries' | 'stat' | 'gauge' | 'table' | 'logs';
export const PANEL_TYPES: PanelType[] = ['timeseries', 'stat', 'gauge', 'table', 'logs'];
export const UNITS: Unit[] = ['', 'percent', 'bytes', 'bytes_per_second'];

export interface Panel { title: string; type: PanelType; query: string; unit: Unit; width: 1 | 2 }
export interface Variable { name: string; label: string; match: string }
export interface Dashboard {
  id: string;
  title: string;
  panels: Panel[];
  variables: Variable[];
  version: number;
  updated: number;
  updated_by: string;
}
export interface Summary { id: string; title: string; version: number; updated: number; updated_by: string; panels: number }

export const listDashboards = (signal?: AbortSignal) => promGet<Summary[]>('/api/v1/dashboards', {}, signal);
export const getDashboard = (id: string, signal?: AbortSignal) => promGet<Dashboard>(`/api/v1/dashboards/${encodeURIComponent(id)}`, {}, signal);
export const createDashboard = (d: { title: string; panels: Panel[]; variables: Variable[] }) => sendJSON<Dashboard>('POST', '/api/v1/dashboards', d);
export const saveDashboard = (d: Dashboard) =>
  sendJSON<Dashboard>('PUT', `/api/v1/dashboards/${encodeURIComponent(d.id)}`, {
    title: d.title,
    panels: d.panels,
    variables: d.variables,
    version: d.version,
  });
export const deleteDashboard = (id: string) => sendJSON<null>('DELETE', `/api/v1/dashboards/${encodeURIComponent(id)}`);

/** The values a variable offers: PromQL's label_values(match, label) through /api/v1/label/<label>/values. */
export function variableValues(v: Variable, signal?: AbortSignal): Promise<string[]> {
  return promGet<string[]>(`/api/v1/label/${encodeURIComponent(v.label)}/values`, v.match ? { 'match[]': v.match } : {}, signal);
}

/** `$name` and `${name}` replaced by the variables' chosen values (longest names first). */
export function substitute(query: string, values: Record<string, string>): string {
  let out = query;
  for (const name of Object.keys(values).sort((a, b) => b.length - a.length)) {
    const v = values[name] ?? '';
    out = out.split(`\${${name}}`).join(v).split(`$${name}`).join(v);
  }
  return out;
}
