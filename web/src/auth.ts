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

/** What a sign-in step answered: done, an error to show, or a second step (TOTP code, or enrolment when the
 * organisation requires MFA and the user has none yet). */
export type SignInStep =
  | { kind: 'done'; recoveryCodes: string[] }
  | { kind: 'error'; message: string }
  | { kind: 'mfa'; token: string }
  | { kind: 'enrol'; token: string };

async function messageOf(resp: Response, fallback: string): Promise<string> {
  try {
    const body = (await resp.json()) as { error?: string; message?: string };
    return body.error ?? body.message ?? fallback;
  } catch {
    return fallback;
  }
}

export async function signIn(username: string, password: string): Promise<SignInStep> {
  const resp = await postJSON('/api/v1/auth/login', { username, password });
  if (resp.status === 401 || resp.status === 403) return { kind: 'error', message: 'Wrong user name or password.' };
  if (!resp.ok) return { kind: 'error', message: await messageOf(resp, `Sign-in failed (${resp.status}).`) };
  const body = (await resp.json()) as { data?: { mfa_required?: boolean; mfa_enrolment_required?: boolean; mfa_token?: string } };
  const d = body.data ?? {};
  if (d.mfa_token && d.mfa_enrolment_required) return { kind: 'enrol', token: d.mfa_token };
  if (d.mfa_token && d.mfa_required) return { kind: 'mfa', token: d.mfa_token };
  return { kind: 'done', recoveryCodes: [] };
}

/** The second step: a TOTP code (or a recovery code) for the token of the first. */
export async function signInCode(token: string, code: string, recovery: boolean): Promise<SignInStep> {
  const resp = await postJSON('/api/v1/auth/login/mfa', recovery ? { mfa_token: token, recovery_code: code } : { mfa_token: token, code });
  if (resp.status === 401) return { kind: 'error', message: await messageOf(resp, 'Wrong or used code.') };
  if (!resp.ok) return { kind: 'error', message: await messageOf(resp, `Sign-in failed (${resp.status}).`) };
  const body = (await resp.json()) as { data?: { recovery_codes?: string[] } };
  return { kind: 'done', recoveryCodes: body.data?.recovery_codes ?? [] };
}

export interface Enrolment { secret: string; otpauth_uri: string; qr_svg: string }

/** MFA enrolment during sign-in (the organisation requires MFA): the secret, its URI and QR code. */
export async function enrolAtSignIn(token: string): Promise<Enrolment | string> {
  const resp = await postJSON('/api/v1/auth/login/mfa/enrol', { mfa_token: token });
  if (!resp.ok) return messageOf(resp, `Enrolment failed (${resp.status}).`);
  return ((await resp.json()) as { data: Enrolment }).data;
}

export interface SsoProvider { name: string; display_name: string; login_url: string }

/** The single sign-on providers configured on the server (none when the API is absent). */
export async function ssoProviders(): Promise<SsoProvider[]> {
  try {
    const resp = await fetch('/api/v1/auth/sso/providers', { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
    if (!resp.ok) return [];
    const body = (await resp.json()) as { data?: SsoProvider[] };
    return Array.isArray(body.data) ? body.data : [];
  } catch {
    return [];
  }
}

export async function signOut(): Promise<void> {
  await postJSON('/api/v1/auth/logout', {});
}
