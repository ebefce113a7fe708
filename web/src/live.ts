// The overview's live data: a rolling window of /ws/metrics ticks, one aligned time grid for every
// panel and host (what uPlot wants), bounded so a page left open for hours keeps a flat memory.
import type { Metric } from './api';

export interface PanelInfo { title: string; unit: string; query: string }
type Row = { metric: Metric; v: number | null };
export type LiveMessage =
  | { type: 'hello'; interval_ms: number; panels: Record<string, PanelInfo> }
  | { type: 'backfill'; t: number[]; panels: Record<string, { metric: Metric; v: (number | null)[] }[]> }
  | { type: 'tick'; t: number; panels: Record<string, Row[]> }
  | { type: 'error'; error: string };

export const WINDOW_MS = 15 * 60_000;
const MAX_POINTS = 2000;

export function hostOf(m: Metric): string {
  return m.instance ?? m.host ?? m.job ?? '(no instance)';
}

export class LiveSeries {
  panels: Record<string, PanelInfo> = {};
  t: number[] = [];
  /** panel -> host -> values aligned with `t` */
  values = new Map<string, Map<string, (number | null)[]>>();
  lastTick = 0;

  private column(panel: string, host: string): (number | null)[] {
    let byHost = this.values.get(panel);
    if (!byHost) {
      byHost = new Map();
      this.values.set(panel, byHost);
    }
    let col = byHost.get(host);
    if (!col) {
      col = new Array<number | null>(this.t.length).fill(null);
      byHost.set(host, col);
    }
    return col;
  }

  apply(msg: LiveMessage): void {
    if (msg.type === 'hello') {
      this.panels = msg.panels;
    } else if (msg.type === 'backfill') {
      // History goes in front of the ticks already received (the server sends one tick first).
      const lastBack = msg.t[msg.t.length - 1] ?? -Infinity;
      const keep = this.t.findIndex((t) => t > lastBack);
      const kept = keep < 0 ? 0 : this.t.length - keep;
      const old = this.values;
      this.t = [...msg.t, ...this.t.slice(this.t.length - kept)];
      this.values = new Map();
      for (const [panel, byHost] of old) {
        for (const [host, col] of byHost) {
          const next = this.column(panel, host);
          col.slice(col.length - kept).forEach((v, i) => {
            next[msg.t.length + i] = v;
          });
        }
      }
      for (const [panel, rows] of Object.entries(msg.panels)) {
        for (const r of rows) {
          const col = this.column(panel, hostOf(r.metric));
          r.v.forEach((v, i) => {
            col[i] = v;
          });
        }
      }
    } else if (msg.type === 'tick') {
      if (this.t.length && msg.t <= (this.t[this.t.length - 1] ?? 0)) return;
      this.t.push(msg.t);
      this.lastTick = msg.t;
      const n = this.t.length;
      for (const byHost of this.values.values()) for (const col of byHost.values()) col.push(null);
      for (const [panel, rows] of Object.entries(msg.panels)) {
        for (const r of rows) {
          const col = this.column(panel, hostOf(r.metric));
          col[n - 1] = r.v;
        }
      }
      this.trim();
    }
  }

  private trim(): void {
    const last = this.t[this.t.length - 1] ?? 0;
    let drop = 0;
    while (drop < this.t.length && ((this.t[drop] ?? 0) < last - WINDOW_MS || this.t.length - drop > MAX_POINTS)) drop++;
    if (!drop) return;
    this.t.splice(0, drop);
    for (const byHost of this.values.values()) {
      for (const [host, col] of byHost) {
        col.splice(0, drop);
        if (col.every((v) => v === null)) byHost.delete(host);
      }
    }
  }

  hosts(): string[] {
    const s = new Set<string>();
    for (const byHost of this.values.values()) for (const h of byHost.keys()) s.add(h);
    return [...s].sort();
  }

  latest(panel: string, host: string): number | null {
    const col = this.values.get(panel)?.get(host);
    if (!col) return null;
    for (let i = col.length - 1; i >= 0; i--) {
      const v = col[i];
      if (v !== null && v !== undefined) return v;
    }
    return null;
  }
}
