// Silences through the Alertmanager v2 API (GET/POST /api/v2/silences, DELETE /api/v2/silence/{id}).
import { getJSON, sendJSON } from './api';

export interface SilenceMatcher { name: string; value: string; isRegex: boolean; isEqual: boolean }
export interface Silence {
  id: string;
  matchers: SilenceMatcher[];
  startsAt: string;
  endsAt: string;
  createdBy: string;
  comment: string;
  status: { state: 'active' | 'pending' | 'expired' };
  expireOnResolve?: boolean;
}

const MATCHER = /\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)/y;

/** `a="b", c=~"d.*"` (braces optional) as matchers; throws with the position of what does not parse. */
export function parseMatchers(text: string): SilenceMatcher[] {
  const t = text.trim().replace(/^\{/, '').replace(/\}$/, '');
  const out: SilenceMatcher[] = [];
  MATCHER.lastIndex = 0;
  while (MATCHER.lastIndex < t.length) {
    const at = MATCHER.lastIndex;
    const m = MATCHER.exec(t);
    if (!m) throw new Error(`cannot read a matcher at "${t.slice(at, at + 20)}": write name="value", name=~"regex", name!="value"`);
    const op = m[2] ?? '=';
    out.push({ name: m[1] ?? '', value: JSON.parse(`"${m[3] ?? ''}"`) as string, isRegex: op.includes('~'), isEqual: !op.startsWith('!') });
  }
  if (!out.length) throw new Error('add at least one matcher, such as alertname="HighLoad"');
  return out;
}

/** The matchers of a silence form, checked with its comment; throws with what to fix. */
export function silenceInput(matchers: string, comment: string): SilenceMatcher[] {
  const parsed = parseMatchers(matchers);
  if (!comment.trim()) throw new Error('Say why in the comment (who reads the silence later needs it).');
  return parsed;
}

export function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function matcherText(m: SilenceMatcher): string {
  const op = m.isEqual ? (m.isRegex ? '=~' : '=') : m.isRegex ? '!~' : '!=';
  return `${m.name}${op}${JSON.stringify(m.value)}`;
}

export function matchersOf(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(', ');
}

export function listSilences(signal?: AbortSignal): Promise<Silence[]> {
  return getJSON<Silence[]>('/api/v2/silences', {}, signal);
}

export async function createSilence(s: { matchers: SilenceMatcher[]; endsAt: string | null; comment: string; createdBy: string }): Promise<string> {
  const body: Record<string, unknown> = { matchers: s.matchers, startsAt: new Date().toISOString(), comment: s.comment, createdBy: s.createdBy };
  if (s.endsAt) body.endsAt = s.endsAt;
  else body.expireOnResolve = true;
  const r = await sendJSON<{ silenceID: string }>('POST', '/api/v2/silences', body);
  return r.silenceID;
}

export async function expireSilence(id: string): Promise<void> {
  await sendJSON<unknown>('DELETE', `/api/v2/silence/${encodeURIComponent(id)}`);
}

// Recurring silences (GET/POST /api/v1/silence_schedules, DELETE /api/v1/silence_schedules/{id}): a weekly
// window in a time zone; the server materialises each window as an ordinary silence (docs/alerting.md).
export const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface SilenceSchedule {
  id: string;
  matchers: SilenceMatcher[];
  weekdays: Weekday[];
  startTime: string;
  endTime: string;
  timeZone: string;
  comment: string;
  createdBy: string;
  createdAt: string;
  windows: { startsAt: string; endsAt: string }[];
}

export function listSchedules(signal?: AbortSignal): Promise<SilenceSchedule[]> {
  return getJSON<{ data: SilenceSchedule[] }>('/api/v1/silence_schedules', {}, signal).then((r) => r.data);
}

export function createSchedule(s: { matchers: SilenceMatcher[]; weekdays: Weekday[]; startTime: string; endTime: string; timeZone: string; comment: string }): Promise<SilenceSchedule> {
  // an <input type="time"> cannot say 24:00: an end of 00:00 is the end of the day (the same instant)
  return sendJSON<SilenceSchedule>('POST', '/api/v1/silence_schedules', { ...s, endTime: s.endTime === '00:00' ? '24:00' : s.endTime });
}

export async function deleteSchedule(id: string): Promise<void> {
  await sendJSON<unknown>('DELETE', `/api/v1/silence_schedules/${encodeURIComponent(id)}`);
}
