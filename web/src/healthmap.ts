// The health map's data (GET /api/v1/health/map, GET /api/v1/correlations) and its pure geometry: the
// layered graph layout (hosts, containers, services) and the correlation timeline's scale and ticks.
import { promGet } from './api';
import type { Health, HealthStatus, Resource } from './resources';

export interface MapNode extends Resource {
  health: Health | null;
}

export interface MapEdge {
  source: string; // runs on ...
  target: string;
  relation: string;
}

export interface HealthMapData {
  nodes: MapNode[];
  edges: MapEdge[];
  total: number;
  truncated: boolean;
}

export interface Correlation {
  id: string;
  message: string;
  timestamp_ns: string;
  severity?: string;
  data: {
    cause?: { id?: string; message?: string; type?: string; time_ns?: string; severity?: string };
    anomaly?: { resource?: string; metric?: string; unit?: string; start_ms?: number; peak_ms?: number; peak_value?: number; baseline_median?: number; score?: number; direction?: string };
    delay_seconds?: number;
  };
}

export function fetchHealthMap(signal?: AbortSignal): Promise<HealthMapData> {
  return promGet<HealthMapData>('/api/v1/health/map', {}, signal);
}

export async function fetchCorrelations(startMs: number, endMs: number, signal?: AbortSignal): Promise<Correlation[]> {
  const d = await promGet<{ correlations: Correlation[] }>('/api/v1/correlations', { start: startMs / 1000, end: endMs / 1000, limit: 200 }, signal);
  return d.correlations;
}

export function healthOfNode(n: MapNode): HealthStatus {
  return n.health?.status ?? 'unknown';
}

/** Milliseconds of a nanosecond string (`"1700000000123456789"`), without losing precision to floats. */
export function nsToMs(ns: string | undefined): number | null {
  if (!ns || !/^\d+$/.test(ns)) return null;
  return Number(ns.length > 6 ? ns.slice(0, -6) : '0');
}

// ---- graph layout ------------------------------------------------------------------------------

export const NODE_W = 200;
export const NODE_H = 46;
const COL_GAP = 290;
const ROW_GAP = 62;
const PAD = 12;
const HEAD = 34;
/** x of a layer's column. */
export const columnX = (col: number): number => PAD + col * COL_GAP;
export const LAYERS = ['host', 'container', 'service'] as const;
export const LAYER_TITLE: Record<(typeof LAYERS)[number], string> = { host: 'Hosts', container: 'Containers', service: 'Services' };

export interface Placed {
  node: MapNode;
  col: number;
  row: number;
  x: number;
  y: number;
}

export interface Layout {
  placed: Map<string, Placed>;
  columns: string[][]; // ids per layer, top to bottom
  width: number;
  height: number;
}

const byName = (a: MapNode, b: MapNode) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id);

/** Deterministic layered layout: hosts in the left column (by name), each host's containers in the middle
 * column from the host's row down, services on the right next to the first thing they run on; a node
 * without a relation goes after the others of its column. */
export function layoutGraph(nodes: MapNode[], edges: MapEdge[]): Layout {
  const targets = new Map<string, string[]>();
  for (const e of edges) targets.set(e.source, [...(targets.get(e.source) ?? []), e.target]);
  const rows = new Map<string, number>();
  const hosts = nodes.filter((n) => n.kind === 'host').sort(byName);
  const containers = nodes.filter((n) => n.kind === 'container').sort(byName);
  const services = nodes.filter((n) => n.kind === 'service').sort(byName);
  const onHost = (c: MapNode) => (targets.get(c.id) ?? []).find((t) => t.startsWith('host:'));

  let nextHost = 0;
  let nextContainer = 0;
  for (const h of hosts) {
    const row = Math.max(nextHost, nextContainer);
    rows.set(h.id, row);
    nextHost = row + 1;
    nextContainer = row;
    for (const c of containers.filter((c) => onHost(c) === h.id)) rows.set(c.id, nextContainer++);
  }
  for (const c of containers) if (!rows.has(c.id)) rows.set(c.id, nextContainer++);

  const wanted = (s: MapNode) => {
    const r = (targets.get(s.id) ?? []).map((t) => rows.get(t)).filter((v): v is number => v !== undefined);
    return r.length ? Math.min(...r) : Infinity;
  };
  let nextService = 0;
  const ordered = services.map((s) => ({ s, w: wanted(s) })).sort((a, b) => a.w - b.w || byName(a.s, b.s));
  for (const { s, w } of ordered) {
    const row = Number.isFinite(w) ? Math.max(w, nextService) : nextService;
    rows.set(s.id, row);
    nextService = row + 1;
  }

  const placed = new Map<string, Placed>();
  const columns: string[][] = LAYERS.map(() => []);
  let maxRow = -1;
  for (const n of nodes) {
    const col = LAYERS.indexOf(n.kind);
    const row = rows.get(n.id) ?? 0;
    maxRow = Math.max(maxRow, row);
    placed.set(n.id, { node: n, col, row, x: columnX(col), y: HEAD + row * ROW_GAP });
  }
  for (const p of [...placed.values()].sort((a, b) => a.row - b.row)) columns[p.col]?.push(p.node.id);
  return { placed, columns, width: PAD * 2 + (LAYERS.length - 1) * COL_GAP + NODE_W, height: HEAD + (maxRow + 1) * ROW_GAP + PAD };
}

function curve(x1: number, y1: number, x2: number, y2: number): string {
  const mid = (x1 + x2) / 2;
  return `C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
}

/** An SVG path from the source's left side to the target's right side (what it runs on is to the left). An
 * edge that skips a column (a service on a host) crosses it in the gap between two rows, never through a node. */
export function edgePath(s: Placed, t: Placed): string {
  const y1 = s.y + NODE_H / 2;
  const y2 = t.y + NODE_H / 2;
  const x2 = t.x + NODE_W;
  if (s.col - t.col < 2) return `M${s.x},${y1} ${curve(s.x, y1, x2, y2)}`;
  const gap = (ROW_GAP - NODE_H) / 2;
  const row = Math.max(0, Math.round(((y1 + y2) / 2 - HEAD + gap) / ROW_GAP));
  const gy = HEAD + row * ROW_GAP - gap;
  const xa = columnX(s.col - 1) + NODE_W;
  const xb = columnX(t.col + 1);
  return `M${s.x},${y1} ${curve(s.x, y1, xa, gy)} L${xb},${gy} ${curve(xb, gy, x2, y2)}`;
}

// ---- timeline --------------------------------------------------------------------------------------

const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
const TICK_STEPS = [5, 10, 15, 30, 60, 120, 180, 360, 720, 1440].map((m) => m * MINUTE);

/** x of a time on a plot of `width` pixels spanning [start, end]. */
export function timeX(t: number, start: number, end: number, width: number): number {
  return end > start ? ((t - start) / (end - start)) * width : 0;
}

/** Ticks on whole local minutes or hours (the smallest step of 5 min to 24 h giving at most `max` ticks)
 * inside [start, end]. */
export function timeTicks(start: number, end: number, max = 9): number[] {
  const step = TICK_STEPS.find((s) => (end - start) / s <= max) ?? 24 * HOUR;
  const d = new Date(start);
  d.setSeconds(0, 0);
  if (d.getTime() < start) d.setMinutes(d.getMinutes() + 1);
  const stepMin = step / MINUTE;
  // local minutes since midnight, so hour steps fall on whole hours of the user's zone
  while ((d.getHours() * 60 + d.getMinutes()) % stepMin !== 0) d.setMinutes(d.getMinutes() + 1);
  const out: number[] = [];
  for (; d.getTime() <= end; d.setMinutes(d.getMinutes() + stepMin)) out.push(d.getTime());
  return out;
}
