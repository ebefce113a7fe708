// Recurring silences on the alerts page: the organisation's weekly mute windows (list, create, delete). The
// server turns each window into an ordinary silence shortly before it starts, which the silences table shows.
import { useEffect, useRef, useState } from 'preact/hooks';
import { createSchedule, deleteSchedule, errText, listSchedules, matcherText, WEEKDAYS, type SilenceSchedule, type Weekday } from '../silences';
import { useSilenceForm } from './silenceForm';
import { Time } from './Time';

const browserZone = (): string => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
const cap = (d: string): string => d.charAt(0).toUpperCase() + d.slice(1);

/** "Mon–Fri" style text for a set of days (runs of three or more days joined). */
export function daysText(days: Weekday[]): string {
  const idx = WEEKDAYS.map((d) => days.includes(d));
  if (idx.every(Boolean)) return 'every day';
  const out: string[] = [];
  for (let i = 0; i < 7; i++) {
    if (!idx[i]) continue;
    let j = i;
    while (j + 1 < 7 && idx[j + 1]) j++;
    const a = cap(WEEKDAYS[i] ?? '').slice(0, 3);
    const b = cap(WEEKDAYS[j] ?? '').slice(0, 3);
    if (j - i >= 2) out.push(`${a}–${b}`);
    else for (let k = i; k <= j; k++) out.push(cap(WEEKDAYS[k] ?? '').slice(0, 3));
    i = j;
  }
  return out.join(', ');
}

/** Opened, it scrolls into view and focuses its first field. */
function ScheduleForm({ initial, onDone }: { initial: string; onDone: (msg: string) => void }) {
  const ref = useRef<HTMLFormElement>(null);
  useEffect(() => {
    ref.current?.scrollIntoView({ block: 'nearest' });
    ref.current?.querySelector('input')?.focus();
  }, []);
  const [days, setDays] = useState<Weekday[]>(['saturday', 'sunday']);
  const [start, setStart] = useState('02:00');
  const [end, setEnd] = useState('04:00');
  const [zone, setZone] = useState(browserZone);
  const { matchers, setMatchers, comment, setComment, error, busy, submit } = useSilenceForm(initial, 'The recurring silence was not created', async (parsed, text) => {
    if (!days.length) throw new Error('pick at least one day');
    const s = await createSchedule({ matchers: parsed, weekdays: days, startTime: start, endTime: end, timeZone: zone.trim(), comment: text });
    return `Recurring silence ${s.id} created.`;
  }, onDone);
  const toggle = (d: Weekday, on: boolean) => setDays((prev) => WEEKDAYS.filter((x) => (x === d ? on : prev.includes(x))));
  return (
    <form ref={ref} class="card silence-form" onSubmit={submit} aria-labelledby="new-schedule-title" data-testid="schedule-form">
      <h3 id="new-schedule-title" class="h3">
        New recurring silence
      </h3>
      <div class="toolbar">
        <label class="grow">
          Matchers
          <input class="mono wide" value={matchers} onInput={(e) => setMatchers(e.currentTarget.value)} placeholder='alertname="NightlyBackup"' />
        </label>
        <label class="grow">
          Comment
          <input value={comment} onInput={(e) => setComment(e.currentTarget.value)} placeholder="why, and a ticket if there is one" />
        </label>
      </div>
      <div class="toolbar">
        <fieldset class="days">
          <legend>Days the window starts on</legend>
          {WEEKDAYS.map((d) => (
            <label key={d} class="inline-check">
              <input type="checkbox" checked={days.includes(d)} onChange={(e) => toggle(d, e.currentTarget.checked)} /> {cap(d)}
            </label>
          ))}
        </fieldset>
        <label>
          From
          <input type="time" value={start} required onInput={(e) => setStart(e.currentTarget.value)} />
        </label>
        <label>
          To
          <input type="time" value={end} required onInput={(e) => setEnd(e.currentTarget.value)} />
        </label>
        <label>
          Time zone
          <input value={zone} onInput={(e) => setZone(e.currentTarget.value)} placeholder="Europe/Berlin" spellcheck={false} />
        </label>
        <button type="submit" class="btn primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create recurring silence'}
        </button>
      </div>
      <p class="muted small">An end at or before the start ends on the next day (22:00 to 06:00 runs overnight); 00:00 to 00:00 is the whole day.</p>
      {error ? (
        <p role="alert" class="error">
          {error}
        </p>
      ) : null}
    </form>
  );
}

/** The organisation's recurring silences; ``request`` opens the form with matchers (from an alert's row),
 * ``onChanged`` reloads the silences table (their windows' silences). */
export function RecurringSilences({ maySilence, request, onChanged }: { maySilence: boolean; request: { key: number; matchers: string } | null; onChanged: (msg: string) => void }) {
  const [items, setItems] = useState<SilenceSchedule[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [form, setForm] = useState<{ key: number; matchers: string } | null>(null);
  useEffect(() => {
    if (request) setForm(request); // "Recurring" on an alert's row: the form with its labels as matchers
  }, [request?.key]);
  const [reload, setReload] = useState(0);
  useEffect(() => {
    const ctl = new AbortController();
    listSchedules(ctl.signal)
      .then(setItems)
      .catch((e: unknown) => {
        if (!ctl.signal.aborted) setError(errText(e));
      });
    return () => ctl.abort();
  }, [reload]);
  const changed = (msg: string) => {
    setReload((n) => n + 1);
    onChanged(msg);
  };
  const remove = async (s: SilenceSchedule) => {
    if (!confirm(`Delete the recurring silence ${s.matchers.map(matcherText).join(', ')}? Its running window's silence expires now.`)) return;
    try {
      await deleteSchedule(s.id);
      changed(`Recurring silence ${s.id} deleted.`);
    } catch (e) {
      onChanged(`The recurring silence was not deleted: ${errText(e)}`);
    }
  };
  return (
    <section class="card" aria-labelledby="schedules-title" data-testid="schedules">
      <div class="page-head">
        <h2 id="schedules-title">Recurring silences</h2>
        {maySilence ? (
          <button type="button" class="btn" onClick={() => setForm({ key: Date.now(), matchers: '' })}>
            New recurring silence
          </button>
        ) : null}
      </div>
      {form && maySilence ? (
        <ScheduleForm
          key={form.key}
          initial={form.matchers}
          onDone={(msg) => {
            setForm(null);
            changed(msg);
          }}
        />
      ) : null}
      {error ? (
        <p role="alert" class="error">
          Cannot load the recurring silences: {error}
        </p>
      ) : items === null ? (
        <p role="status">Loading…</p>
      ) : items.length === 0 ? (
        <p class="empty">No recurring silence.{maySilence ? ' Mute alerts every week at the same time (a maintenance window, a nightly job) with New recurring silence.' : ''}</p>
      ) : (
        <table class="table">
          <caption class="sr-only">Recurring silences</caption>
          <thead>
            <tr>
              <th scope="col">Days</th>
              <th scope="col">Window</th>
              <th scope="col">Matchers</th>
              <th scope="col">Next window starts</th>
              <th scope="col">Created by</th>
              <th scope="col">Comment</th>
              {maySilence ? <th scope="col"><span class="sr-only">Actions</span></th> : null}
            </tr>
          </thead>
          <tbody>
            {items.map((s) => {
              const next = s.windows[0];
              const running = next && Date.parse(next.startsAt) <= Date.now();
              return (
                <tr key={s.id} data-schedule={s.id}>
                  <td>{daysText(s.weekdays)}</td>
                  <td>
                    {s.startTime}–{s.endTime} <span class="muted small">{s.timeZone}</span>
                  </td>
                  <td class="mono small">{s.matchers.map(matcherText).join(', ')}</td>
                  <td>{next ? running ? <>running until <Time ms={Date.parse(next.endsAt)} /></> : <Time ms={Date.parse(next.startsAt)} /> : '–'}</td>
                  <td>{s.createdBy}</td>
                  <td>{s.comment}</td>
                  {maySilence ? (
                    <td>
                      <button type="button" class="btn" onClick={() => void remove(s)} aria-label={`Delete recurring silence ${s.matchers.map(matcherText).join(', ')}`}>
                        Delete
                      </button>
                    </td>
                  ) : null}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
