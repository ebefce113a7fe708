// Who is using the UI. GET /api/v1/auth/me: 200 -> a user (or the anonymous principal that
// auth.anonymous=loopback gives local requests); 401 -> sign in; 404 -> a server without the identity
// API: anonymous local access.
import { postJSON } from './api';

export type AuthState =
  | { kind: 'loading' }
  | { kind: 'anonymous'; permissions: string[] | null }
  | { kind: 'user'; name: string; roles: string[]; org: string; permissions: string[] }
  | { kind: 'signin'; message?: string }
  | { kind: 'error'; message: string };

export async function whoAmI(): Promise<AuthState> {
  let resp: Response;
  try {
    resp = await fetch('/api/v1/auth/me', { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
  } catch (e) {
    return { kind: 'error', message: `cannot reach the server: ${String(e)}` };
  }
  if (resp.status === 404) return { kind: 'anonymous', permissions: null };
  if (resp.status === 401) return { kind: 'signin' };
  if (!resp.ok) return { kind: 'error', message: `GET /api/v1/auth/me answered ${resp.status}` };
  const body = (await resp.json()) as Record<string, unknown>;
  const data = (body.data && typeof body.data === 'object' ? body.data : body) as Record<string, unknown>;
  const permissions = Array.isArray(data.permissions) ? data.permissions.map(String) : [];
  if (data.anonymous === true) return { kind: 'anonymous', permissions };
  const name = String(data.name ?? data.username ?? 'signed in');
  const roles = Array.isArray(data.roles) ? data.roles.map(String) : [];
  const org = typeof data.org === 'string' ? data.org : '';
  return { kind: 'user', name, roles, org, permissions };
}

/** Whether the principal holds a permission (a server without the identity API: unknown, so yes; the
 * API refuses anyway). Used only to hide controls. */
export function may(auth: AuthState, permission: string): boolean {
  if (auth.kind === 'user') return auth.permissions.includes(permission);
  if (auth.kind === 'anonymous') return auth.permissions === null || auth.permissions.includes(permission);
  return false;
}

export async function signIn(username: string, password: string): Promise<string | null> {
  const resp = await postJSON('/api/v1/auth/login', { username, password });
  if (resp.ok) return null;
  if (resp.status === 401 || resp.status === 403) return 'Wrong user name or password.';
  try {
    const body = (await resp.json()) as { error?: string; message?: string };
    return body.error ?? body.message ?? `Sign-in failed (${resp.status}).`;
  } catch {
    return `Sign-in failed (${resp.status}).`;
  }
}

export async function signOut(): Promise<void> {
  await postJSON('/api/v1/auth/logout', {});
}
