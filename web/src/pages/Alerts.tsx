import { useEffect, useState } from 'preact/hooks';
import { getJSON, labelsText, promGet, type Alert } from '../api';
import { RecurringSilences } from '../components/RecurringSilences';
import { Time } from '../components/Time';
import { apiNamespaceOf, RuleEditor } from './RuleEditor';
import { createSilence, errText, expireSilence, listSilences, matchersOf, matcherText, type Silence } from '../silences';
import { useSilenceForm } from '../components/silenceForm';

interface Rule {
  name: string;
  query: string;
  type: 'alerting' | 'recording';
  health: string;
  lastError?: string;
  state?: string;
  duration?: number;
  alerts?: Alert[];
  lastEvaluation?: string;
}
interface Group { name: string; file: string; interval: number; rules: Rule[] }

const STATE_ICON: Record<string, string> = { firing: '✖', pending: '▲', inactive: '✔' };

interface Notification {
  time: string;
  receiver: string;
  integration: string;
  status: string;
  alerts: number;
  attempt: number;
  result: 'success' | 'retrying' | 'failed';
  detail?: string;
}

const DURATIONS: [string, number | null][] = [
  ['1 hour', 3600e3], ['2 hours', 7200e3], ['4 hours', 4 * 3600e3], ['1 day', 86400e3], ['1 week', 7 * 86400e3], ['until the alerts resolve', null],
];

/** The silence form: matchers (prefilled from an alert), duration or "until resolved", comment. */
function SilenceForm({ initial, user, onDone }: { initial: string; user: string; onDone: (msg: string) => void }) {
  const [duration, setDuration] = useState('0');
  const { matchers, setMatchers, comment, setComment, error, busy, submit } = useSilenceForm(initial, 'The silence was not created', async (parsed, text) => {
    const ms = DURATIONS[Number(duration)]?.[1] ?? null;
    const id = await createSilence({ matchers: parsed, endsAt: ms === null ? null : new Date(Date.now() + ms).toISOString(), comment: text, createdBy: user });
    return `Silence ${id} created.`;
  }, onDone);
  return (
    <form class="card silence-form" onSubmit={submit} aria-labelledby="new-silence-title" data-testid="silence-form">
      <h3 id="new-silence-title" class="h3">
        New silence
      </h3>
      <div class="toolbar">
        <label class="grow">
          Matchers
          <input class="mono wide" value={matchers} onInput={(e) => setMatchers(e.currentTarget.value)} placeholder='alertname="HighLoad", instance=~"web-.*"' />
        </label>
        <label>
          For
          <select value={duration} onChange={(e) => setDuration(e.currentTarget.value)}>
            {DURATIONS.map(([t], i) => (
              <option key={t} value={String(i)}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <label class="grow">
          Comment
          <input value={comment} onInput={(e) => setComment(e.currentTarget.value)} placeholder="why, and a ticket if there is one" />
        </label>
        <button type="submit" class="btn primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create silence'}
        </button>
      </div>
      {error ? (
        <p role="alert" class="error">
          {error}
        </p>
      ) : null}
    </form>
  );
}

/** Alerts: firing and pending alerts (silence one from its row), silences (create, expire), recurring silences
 * (create, delete), the rule groups
 * (read-only) and the notification history with failures. Silence controls need `silences:manage`. */
export function AlertsPage({ maySilence, mayRules, user }: { maySilence: boolean; mayRules: boolean; user: string }) {
  const [alerts, setAlerts] = useState<Alert[] | null>(null);
  const [silences, setSilences] = useState<Silence[] | null>(null);
  const [showExpired, setShowExpired] = useState(false);
  const [form, setForm] = useState<{ key: number; matchers: string } | null>(null);
  const [recurring, setRecurring] = useState<{ key: number; matchers: string } | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [notifications, setNotifications] = useState<Notification[] | null>(null);
  const [reload, setReload] = useState(0);
  const [editNs, setEditNs] = useState<{ ns: string; key: number } | null>(null);
  const [rulesReload, setRulesReload] = useState(0);
  const [groups, setGroups] = useState<Group[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const ctl = new AbortController();
    Promise.all([
      promGet<{ alerts: Alert[] }>('/api/v1/alerts', {}, ctl.signal),
      promGet<{ groups: Group[] }>('/api/v1/rules', {}, ctl.signal),
    ])
      .then(([a, r]) => {
        setAlerts(a.alerts);
        setGroups(r.groups);
      })
      .catch((e: unknown) => {
        if (!ctl.signal.aborted) setError(e instanceof Error ? e.message : String(e));
      });
    return () => ctl.abort();
  }, [rulesReload]);

  useEffect(() => {
    const ctl = new AbortController();
    listSilences(ctl.signal)
      .then(setSilences)
      .catch((e: unknown) => {
        if (!ctl.signal.aborted) setError(errText(e));
      });
    getJSON<{ data: Notification[] }>('/api/v1/notifications', {}, ctl.signal)
      .then((d) => setNotifications(d.data.slice(-50).reverse()))
      .catch(() => setNotifications([]));
    return () => ctl.abort();
  }, [reload]);

  const expire = async (sil: Silence) => {
    if (!confirm(`Expire the silence ${sil.matchers.map(matcherText).join(', ')}? Its alerts notify again.`)) return;
    try {
      await expireSilence(sil.id);
      setNotice(`Silence ${sil.id} expired.`);
    } catch (e) {
      setNotice(`The silence was not expired: ${errText(e)}`);
    }
    setReload((n) => n + 1);
  };
  const shownSilences = (silences ?? []).filter((x) => showExpired || x.status.state !== 'expired');

  return (
    <section aria-labelledby="alerts-title">
      <h1 id="alerts-title">Alerts</h1>
      <p class="muted small">
        Rules from <code>rules.files</code> are read-only here; rules written through the rules API (
        <code>/api/v1/rules/&#123;namespace&#125;</code>, docs/rules.md) can be edited below{mayRules ? '' : ' with rules:manage'}. Recurring silences (below) mute alerts in a weekly window; each window appears in Silences as it comes (docs/alerting.md).
      </p>
      {notice ? (
        <p role="status" class="notice" data-testid="alerts-notice">
          {notice}
        </p>
      ) : null}
      {error ? <p role="alert" class="error">Cannot load alerts: {error}</p> : null}
      <section class="card" aria-labelledby="active-title">
        <h2 id="active-title">Firing and pending</h2>
        {alerts === null ? (
          <p role="status">Loading…</p>
        ) : alerts.length === 0 ? (
          <p class="empty">No alert is firing or pending.</p>
        ) : (
          <table class="table">
            <caption class="sr-only">Active alerts</caption>
            <thead>
              <tr>
                <th scope="col">State</th>
                <th scope="col">Alert</th>
                <th scope="col">Labels</th>
                <th scope="col">Active since</th>
                <th scope="col">Value</th>
                {maySilence ? <th scope="col"><span class="sr-only">Actions</span></th> : null}
              </tr>
            </thead>
            <tbody>
              {alerts.map((a, i) => (
                <tr key={i}>
                  <td class={`state-${a.state}`}>
                    <span aria-hidden="true">{STATE_ICON[a.state] ?? ''}</span> {a.state}
                  </td>
                  <td>{a.labels.alertname}</td>
                  <td class="mono small">
                    {labelsText(a.labels, ['alertname'])}
                  </td>
                  <td>{a.activeAt ? <Time ms={Date.parse(a.activeAt)} /> : '–'}</td>
                  <td class="num">{a.value ?? ''}</td>
                  {maySilence ? (
                    <td>
                      <button
                        type="button"
                        class="btn"
                        aria-label={`Silence ${a.labels.alertname ?? 'this alert'}`}
                        onClick={() => setForm({ key: Date.now(), matchers: matchersOf(a.labels) })}
                      >
                        Silence
                      </button>{' '}
                      <button
                        type="button"
                        class="btn"
                        aria-label={`Recurring silence for ${a.labels.alertname ?? 'this alert'}`}
                        onClick={() => setRecurring({ key: Date.now(), matchers: matchersOf(a.labels) })}
                      >
                        Recurring
                      </button>
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section class="card" aria-labelledby="silences-title" data-testid="silences">
        <div class="page-head">
          <h2 id="silences-title">Silences</h2>
          <div class="toolbar">
            <label class="inline-check">
              <input type="checkbox" checked={showExpired} onChange={(e) => setShowExpired(e.currentTarget.checked)} /> Show expired
            </label>
            {maySilence ? (
              <button type="button" class="btn" onClick={() => setForm({ key: Date.now(), matchers: '' })}>
                New silence
              </button>
            ) : null}
          </div>
        </div>
        {form && maySilence ? (
          <SilenceForm
            key={form.key}
            initial={form.matchers}
            user={user}
            onDone={(msg) => {
              setForm(null);
              setNotice(msg);
              setReload((n) => n + 1);
            }}
          />
        ) : null}
        {silences === null ? (
          <p role="status">Loading…</p>
        ) : shownSilences.length === 0 ? (
          <p class="empty">No {showExpired ? '' : 'active or pending '}silence.{maySilence ? ' Silence a firing alert from its row, or create one with New silence.' : ''}</p>
        ) : (
          <table class="table">
            <caption class="sr-only">Silences</caption>
            <thead>
              <tr>
                <th scope="col">State</th>
                <th scope="col">Matchers</th>
                <th scope="col">Ends</th>
                <th scope="col">Created by</th>
                <th scope="col">Comment</th>
                {maySilence ? <th scope="col"><span class="sr-only">Actions</span></th> : null}
              </tr>
            </thead>
            <tbody>
              {shownSilences.map((x) => (
                <tr key={x.id} data-silence={x.id} data-state={x.status.state}>
                  <td>
                    {x.status.state}
                    {x.status.state === 'pending' ? (
                      <span class="muted small">
                        {' '}from <Time ms={Date.parse(x.startsAt)} />
                      </span>
                    ) : null}
                  </td>
                  <td class="mono small">{x.matchers.map(matcherText).join(', ')}</td>
                  <td>{x.expireOnResolve && Date.parse(x.endsAt) - Date.now() > 365 * 86400e3 ? 'when its alerts resolve' : <Time ms={Date.parse(x.endsAt)} />}</td>
                  <td>{x.createdBy}</td>
                  <td>{x.comment}</td>
                  {maySilence ? (
                    <td>
                      {x.status.state !== 'expired' ? (
                        <button type="button" class="btn" onClick={() => void expire(x)} aria-label={`Expire silence ${x.matchers.map(matcherText).join(', ')}`}>
                          Expire
                        </button>
                      ) : null}
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <RecurringSilences
        maySilence={maySilence}
        request={recurring}
        onChanged={(msg) => {
          setNotice(msg);
          setReload((n) => n + 1);
        }}
      />
      <section class="card" aria-labelledby="rules-title">
        <h2 id="rules-title">Rules</h2>
        {groups === null ? (
          <p role="status">Loading…</p>
        ) : groups.length === 0 ? (
          <p class="empty">No rule groups are loaded. Add rule files with <code>rules.files</code> in the configuration (docs/rules.md).</p>
        ) : (
          groups.map((g) => (
            <div key={`${g.file}/${g.name}`}>
              <h3 class="h3">
                {g.name} <span class="muted small">{g.file} · every {g.interval}s</span>{' '}
                {mayRules && apiNamespaceOf(g.file) ? (
                  <button type="button" class="btn" aria-label={`Edit rule group ${g.name}`} onClick={() => setEditNs({ ns: apiNamespaceOf(g.file) ?? '', key: Date.now() })}>
                    Edit
                  </button>
                ) : null}
              </h3>
              <table class="table">
                <caption class="sr-only">Rules of group {g.name}</caption>
                <thead>
                  <tr>
                    <th scope="col">Rule</th>
                    <th scope="col">Type</th>
                    <th scope="col">Expression</th>
                    <th scope="col">Health</th>
                    <th scope="col">Last evaluation</th>
                  </tr>
                </thead>
                <tbody>
                  {g.rules.map((r) => (
                    <tr key={r.name}>
                      <td>{r.name}</td>
                      <td>{r.type === 'alerting' ? `alerting (${r.state ?? ''})` : 'recording'}</td>
                      <td class="mono small">{r.query}</td>
                      <td>
                        {r.health}
                        {r.lastError ? <span class="error small"> {r.lastError}</span> : null}
                      </td>
                      <td>{r.lastEvaluation && !r.lastEvaluation.startsWith('0001') ? <Time ms={Date.parse(r.lastEvaluation)} /> : '–'}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ))
        )}
      </section>
      {mayRules ? <RuleEditor load={editNs} onSaved={() => setRulesReload((n) => n + 1)} /> : null}
      <section class="card" aria-labelledby="notif-title">
        <h2 id="notif-title">Notification history</h2>
        {notifications === null ? (
          <p role="status">Loading…</p>
        ) : notifications.length === 0 ? (
          <p class="empty">No notification was sent yet. Receivers and routes are set in the notification configuration (docs/alerting.md).</p>
        ) : (
          <table class="table" data-testid="notifications">
            <caption class="sr-only">Recent notifications, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Receiver</th>
                <th scope="col">Result</th>
                <th scope="col">Alerts</th>
                <th scope="col">Detail</th>
              </tr>
            </thead>
            <tbody>
              {notifications.map((n, i) => (
                <tr key={i}>
                  <td><Time ms={Date.parse(n.time)} /></td>
                  <td>{n.receiver} <span class="muted small">{n.integration}</span></td>
                  <td class={n.result === 'failed' ? 'error' : n.result === 'retrying' ? 'warning' : ''}>
                    <span aria-hidden="true">{n.result === 'success' ? '✔ ' : n.result === 'failed' ? '✖ ' : '▲ '}</span>
                    {n.result} {n.attempt > 1 ? `(attempt ${n.attempt})` : ''}
                  </td>
                  <td>{n.alerts} {n.status}</td>
                  <td class="small">{n.detail ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </section>
  );
}
