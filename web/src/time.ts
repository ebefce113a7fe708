// Time helpers: the UI shows the user's local time zone, with UTC on hover.

const UNITS: Record<string, number> = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3, y: 365 * 86400e3 };

/** Prometheus-style duration (`5m`, `1h30m`) in milliseconds, or null. */
export function parseDuration(text: string): number | null {
  const re = /(\d+)(ms|y|w|d|h|m|s)/g;
  const t = text.trim();
  if (!t) return null;
  let total = 0;
  let consumed = 0;
  for (const m of t.matchAll(re)) {
    if (m.index !== consumed) return null;
    total += Number(m[1]) * (UNITS[m[2] ?? ''] ?? 0);
    consumed += m[0].length;
  }
  return consumed === t.length && total > 0 ? total : null;
}

export function formatDuration(ms: number): string {
  const parts: string[] = [];
  for (const [u, f] of [['d', 86400e3], ['h', 3600e3], ['m', 60e3], ['s', 1e3]] as const) {
    if (ms >= f) {
      parts.push(`${Math.floor(ms / f)}${u}`);
      ms %= f;
    }
  }
  return parts.join('') || '0s';
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

export function formatLocal(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function formatUTC(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

/** Value for an `<input type="datetime-local">`. */
export function toLocalInput(ms: number): string {
  return formatLocal(ms).replace(' ', 'T');
}

export function fromLocalInput(v: string): number | null {
  const t = new Date(v).getTime();
  return Number.isFinite(t) ? t : null;
}

export function timeZoneName(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
}

export function utcOffset(): string {
  const off = -new Date().getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  return `UTC${sign}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
}
