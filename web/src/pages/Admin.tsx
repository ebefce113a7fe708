import { useEffect, useState } from 'preact/hooks';
import { promGet, sendJSON } from '../api';
import { Time } from '../components/Time';
import { AuditLog, Organisations, UsageView } from './AdminActivity';

interface ApiKey {
  id: number;
  name: string;
  prefix: string;
  role: string;
  allowed_cidrs: string[];
  created_ms: number;
  expires_ms: number | null;
  revoked_ms: number | null;
  last_used_ms: number | null;
}
interface Member { id: number; username: string; role: string; disabled: boolean; created_ms: number; last_login_ms: number | null }
interface Role { name: string }

const EXPIRY = [
  { value: '', label: 'never' },
  { value: '7d', label: '7 days' },
  { value: '30d', label: '30 days' },
  { value: '90d', label: '90 days' },
  { value: '365d', label: '1 year' },
];

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));
const when = (ms: number | null) => (ms ? <Time ms={ms} /> : '–');

/** Administration of the caller's organisation: API keys (keys:manage) and users (users:manage). The
 * sections a principal may not use are not shown; the API refuses them anyway. */
export function AdminPage({ mayKeys, mayUsers, mayAudit, mayUsage, mayOrgs, org }: { mayKeys: boolean; mayUsers: boolean; mayAudit: boolean; mayUsage: boolean; mayOrgs: boolean; org: string }) {
  const [rolesVersion, setRolesVersion] = useState(0);
  return (
    <section aria-labelledby="admin-title">
      <h1 id="admin-title">Administration</h1>
      {!mayKeys && !mayUsers && !mayAudit && !mayUsage ? (
        <p class="empty" data-testid="admin-denied">
          Your role may not manage API keys or users of this organisation. Ask an administrator.
        </p>
      ) : null}
      {mayKeys ? <ApiKeys listRoles={mayUsers} /> : null}
      {mayUsers ? <Users rolesVersion={rolesVersion} /> : null}
      {mayUsers ? <Roles onChanged={() => setRolesVersion((n) => n + 1)} /> : null}
      {mayUsage ? <UsageView /> : null}
      {mayAudit ? <AuditLog /> : null}
      {mayOrgs ? <Organisations current={org} /> : null}
    </section>
  );
}

/** The organisation's roles (built-in and custom); reading them needs users:manage, without it the
 * built-in names are offered (the API checks that the caller may grant the role either way). */
function useRoles(listRoles: boolean, version = 0): string[] {
  const [roles, setRoles] = useState<string[]>(['viewer', 'editor', 'ingest', 'admin']);
  useEffect(() => {
    if (!listRoles) return;
    promGet<Role[]>('/api/v1/admin/roles')
      .then((r) => setRoles(r.map((x) => x.name)))
      .catch(() => undefined);
  }, [listRoles, version]);
  return roles;
}

function ApiKeys({ listRoles }: { listRoles: boolean }) {
  const [keys, setKeys] = useState<ApiKey[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const [name, setName] = useState('');
  const [role, setRole] = useState('viewer');
  const [expiry, setExpiry] = useState('90d');
  const [created, setCreated] = useState<{ name: string; key: string } | null>(null);
  const [copied, setCopied] = useState(false);
  const roles = useRoles(listRoles);

  useEffect(() => {
    promGet<ApiKey[]>('/api/v1/admin/apikeys')
      .then(setKeys)
      .catch((e: unknown) => setError(message(e)));
  }, [reload]);

  const create = (e: Event) => {
    e.preventDefault();
    setError(null);
    const body: Record<string, string> = { name: name.trim(), role };
    if (expiry) body.expires_in = expiry;
    sendJSON<ApiKey & { key: string }>('POST', '/api/v1/admin/apikeys', body)
      .then((k) => {
        setCreated({ name: k.name, key: k.key });
        setCopied(false);
        setName('');
        setReload((n) => n + 1);
      })
      .catch((err: unknown) => setError(message(err)));
  };

  const revoke = (k: ApiKey) => {
    if (!window.confirm(`Revoke the API key "${k.name}"? Clients using it are refused from now on.`)) return;
    setError(null);
    sendJSON<ApiKey>('DELETE', `/api/v1/admin/apikeys/${k.id}`)
      .then(() => setReload((n) => n + 1))
      .catch((err: unknown) => setError(message(err)));
  };

  const copy = () => {
    if (!created) return;
    navigator.clipboard
      .writeText(created.key)
      .then(() => setCopied(true))
      .catch(() => {
        const el = document.getElementById('new-key') as HTMLInputElement | null;
        el?.select();
      });
  };

  return (
    <section class="card" aria-labelledby="keys-title">
      <h2 id="keys-title">API keys</h2>
      <form class="toolbar" aria-label="Create an API key" onSubmit={create}>
        <label class="grow">
          Key name
          <input class="wide" required maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          Key role
          <select value={role} onChange={(e) => setRole(e.currentTarget.value)}>
            {roles.map((r) => (
              <option key={r} value={r}>{r}</option>
            ))}
          </select>
        </label>
        <label>
          Expires after
          <select value={expiry} onChange={(e) => setExpiry(e.currentTarget.value)}>
            {EXPIRY.map((x) => (
              <option key={x.value} value={x.value}>{x.label}</option>
            ))}
          </select>
        </label>
        <button type="submit" class="btn primary">Create key</button>
      </form>
      {error ? <p role="alert" class="error">{error}</p> : null}
      {created ? (
        <div class="card new-key" role="status" data-testid="new-key">
          <p class="warning">
            <strong>Copy the key "{created.name}" now: it is shown only this once.</strong> The server keeps only its hash.
          </p>
          <div class="toolbar">
            <label class="grow">
              New API key
              <input id="new-key" class="mono wide" readOnly value={created.key} onFocus={(e) => e.currentTarget.select()} />
            </label>
            <button type="button" class="btn" onClick={copy}>
              {copied ? 'Copied' : 'Copy'}
            </button>
            <button type="button" class="btn" onClick={() => setCreated(null)}>
              Done
            </button>
          </div>
        </div>
      ) : null}
      {keys === null ? (
        error ? null : <p role="status">Loading…</p>
      ) : keys.length === 0 ? (
        <p class="empty">No API keys yet.</p>
      ) : (
        <table class="table" data-testid="apikeys">
          <caption class="sr-only">API keys of this organisation</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Role</th>
              <th scope="col">Prefix</th>
              <th scope="col">Created</th>
              <th scope="col">Last used</th>
              <th scope="col">Expires</th>
              <th scope="col">Status</th>
            </tr>
          </thead>
          <tbody>
            {keys.map((k) => (
              <tr key={k.id}>
                <td>{k.name}</td>
                <td>{k.role}</td>
                <td class="mono">{k.prefix}…</td>
                <td>{when(k.created_ms)}</td>
                <td>{k.last_used_ms ? <Time ms={k.last_used_ms} /> : 'never'}</td>
                <td>{k.expires_ms ? <Time ms={k.expires_ms} /> : 'never'}</td>
                <td>
                  {k.revoked_ms ? (
                    <span>revoked {when(k.revoked_ms)}</span>
                  ) : (
                    <button type="button" class="btn" onClick={() => revoke(k)} aria-label={`Revoke ${k.name}`}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Users({ rolesVersion }: { rolesVersion: number }) {
  const [users, setUsers] = useState<Member[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const [form, setForm] = useState({ username: '', password: '', role: 'viewer' });
  const [edits, setEdits] = useState<Record<number, string>>({});
  const roles = useRoles(true, rolesVersion);
  useEffect(() => {
    promGet<Member[]>('/api/v1/admin/users')
      .then(setUsers)
      .catch((e: unknown) => setError(message(e)));
  }, [reload]);
  const act = async (what: () => Promise<unknown>, done: string) => {
    setError(null);
    setNotice(null);
    try {
      await what();
      setNotice(done);
      setReload((n) => n + 1);
    } catch (e) {
      setError(message(e));
    }
  };
  return (
    <section class="card" aria-labelledby="users-title">
      <h2 id="users-title">Users</h2>
      <form
        class="toolbar"
        aria-label="Add a user"
        onSubmit={(e) => {
          e.preventDefault();
          void act(async () => {
            await sendJSON('POST', '/api/v1/admin/users', form);
            setForm({ username: '', password: '', role: form.role });
          }, `User ${form.username} added.`);
        }}
      >
        <label>
          New user name
          <input required value={form.username} autoComplete="off" onInput={(e) => setForm({ ...form, username: e.currentTarget.value })} />
        </label>
        <label>
          Initial password
          <input required type="password" autoComplete="new-password" value={form.password} onInput={(e) => setForm({ ...form, password: e.currentTarget.value })} />
        </label>
        <label>
          New user role
          <select value={form.role} onChange={(e) => setForm({ ...form, role: e.currentTarget.value })}>
            {roles.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" class="btn primary">
          Add user
        </button>
      </form>
      {error ? <p role="alert" class="error">{error}</p> : null}
      {notice ? <p role="status" class="notice">{notice}</p> : null}
      {users === null ? (
        error ? null : <p role="status">Loading…</p>
      ) : (
        <table class="table" data-testid="users">
          <caption class="sr-only">Users of this organisation</caption>
          <thead>
            <tr>
              <th scope="col">User</th>
              <th scope="col">Role</th>
              <th scope="col">Status</th>
              <th scope="col">Created</th>
              <th scope="col">Last sign-in</th>
              <th scope="col"><span class="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {users.map((u) => (
              <tr key={u.id} data-user={u.username}>
                <td>{u.username}</td>
                <td>
                  <select aria-label={`Role of ${u.username}`} value={edits[u.id] ?? u.role} onChange={(e) => setEdits({ ...edits, [u.id]: e.currentTarget.value })}>
                    {(roles.includes(u.role) ? roles : [u.role, ...roles]).map((r) => (
                      <option key={r} value={r}>
                        {r}
                      </option>
                    ))}
                  </select>{' '}
                  {edits[u.id] !== undefined && edits[u.id] !== u.role ? (
                    <button
                      type="button"
                      class="btn"
                      onClick={() =>
                        void act(async () => {
                          await sendJSON('PUT', '/api/v1/admin/memberships', { username: u.username, role: edits[u.id] });
                          setEdits((x) => Object.fromEntries(Object.entries(x).filter(([k]) => k !== String(u.id))));
                        }, `${u.username} is now ${edits[u.id] ?? ''}.`)
                      }
                    >
                      Change role
                    </button>
                  ) : null}
                </td>
                <td>{u.disabled ? 'disabled' : 'active'}</td>
                <td>{when(u.created_ms)}</td>
                <td>{u.last_login_ms ? <Time ms={u.last_login_ms} /> : 'never'}</td>
                <td>
                  <button
                    type="button"
                    class="btn"
                    aria-label={`Remove ${u.username} from this organisation`}
                    onClick={() => {
                      if (confirm(`Remove ${u.username} from this organisation? Their sessions here end.`))
                        void act(() => sendJSON('DELETE', `/api/v1/admin/users/${u.id}`), `${u.username} removed.`);
                    }}
                  >
                    Remove
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

const PERMISSIONS = [
  'metrics:read', 'metrics:write', 'logs:read', 'logs:write', 'events:read', 'events:write', 'traces:read', 'traces:write',
  'rules:manage', 'silences:manage', 'dashboards:manage', 'users:manage', 'keys:manage', 'org:manage', 'audit:read',
];
interface RoleView { name: string; permissions: string[]; builtin: boolean }

/** Roles of the organisation: built-in ones listed, custom ones created (from permissions the caller holds)
 * and deleted. */
function Roles({ onChanged }: { onChanged: () => void }) {
  const [roles, setRoles] = useState<RoleView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const [name, setName] = useState('');
  const [perms, setPerms] = useState<Set<string>>(new Set(['metrics:read']));
  useEffect(() => {
    promGet<RoleView[]>('/api/v1/admin/roles')
      .then(setRoles)
      .catch((e: unknown) => setError(message(e)));
  }, [reload]);
  const create = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      await sendJSON('POST', '/api/v1/admin/roles', { name: name.trim(), permissions: [...perms].sort() });
      setName('');
      setReload((n) => n + 1);
      onChanged();
    } catch (err) {
      setError(`The role was not created: ${message(err)}`);
    }
  };
  return (
    <section class="card" aria-labelledby="roles-title">
      <h2 id="roles-title">Roles</h2>
      <form onSubmit={create} aria-label="Create a role">
        <div class="toolbar">
          <label>
            New role name
            <input required value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="payments-oncall" />
          </label>
          <button type="submit" class="btn primary">
            Create role
          </button>
        </div>
        <fieldset class="perm-grid">
          <legend>Permissions of the new role</legend>
          {PERMISSIONS.map((p) => (
            <label key={p} class="inline-check">
              <input
                type="checkbox"
                checked={perms.has(p)}
                onChange={(e) => {
                  const next = new Set(perms);
                  if (e.currentTarget.checked) next.add(p);
                  else next.delete(p);
                  setPerms(next);
                }}
              />{' '}
              {p}
            </label>
          ))}
        </fieldset>
      </form>
      {error ? <p role="alert" class="error">{error}</p> : null}
      {roles === null ? (
        error ? null : <p role="status">Loading…</p>
      ) : (
        <table class="table" data-testid="roles">
          <caption class="sr-only">Roles of this organisation</caption>
          <thead>
            <tr>
              <th scope="col">Role</th>
              <th scope="col">Permissions</th>
              <th scope="col"><span class="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {roles.map((r) => (
              <tr key={r.name} data-role={r.name}>
                <td>
                  {r.name} {r.builtin ? <span class="muted small">(built in)</span> : null}
                </td>
                <td class="mono small">{r.permissions.join(', ')}</td>
                <td>
                  {r.builtin ? null : (
                    <button
                      type="button"
                      class="btn"
                      aria-label={`Delete role ${r.name}`}
                      onClick={() => {
                        if (!confirm(`Delete the role ${r.name}?`)) return;
                        sendJSON('DELETE', `/api/v1/admin/roles/${encodeURIComponent(r.name)}`)
                          .then(() => {
                            setReload((n) => n + 1);
                            onChanged();
                          })
                          .catch((e: unknown) => setError(`Not deleted: ${message(e)}`));
                      }}
                    >
                      Delete
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
