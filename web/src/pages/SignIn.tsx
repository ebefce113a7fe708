import { useEffect, useState } from 'preact/hooks';
import { enrolAtSignIn, signIn, signInCode, ssoProviders, type Enrolment, type SignInStep, type SsoProvider } from '../auth';

type Stage = { kind: 'password' } | { kind: 'mfa'; token: string } | { kind: 'enrol'; token: string; enrolment: Enrolment | null } | { kind: 'codes'; codes: string[] };

/** Sign-in: user name and password, then a TOTP (or recovery) code when the user has MFA, or MFA enrolment
 * with a QR code when the organisation requires it; "Sign in with ..." for each configured SSO provider. */
export function SignIn({ message, onSignedIn }: { message?: string | undefined; onSignedIn: () => void }) {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [recovery, setRecovery] = useState(false);
  const [stage, setStage] = useState<Stage>({ kind: 'password' });
  const [error, setError] = useState<string | null>(message ?? null);
  const [busy, setBusy] = useState(false);
  const [providers, setProviders] = useState<SsoProvider[]>([]);

  useEffect(() => {
    void ssoProviders().then(setProviders);
  }, []);

  useEffect(() => {
    if (stage.kind !== 'enrol' || stage.enrolment) return;
    void enrolAtSignIn(stage.token).then((e) => {
      if (typeof e === 'string') {
        setError(`${e} Sign in again.`);
        setStage({ kind: 'password' });
      } else setStage({ ...stage, enrolment: e });
    });
  }, [stage]);

  const after = (step: SignInStep) => {
    if (step.kind === 'error') setError(step.message);
    else if (step.kind === 'mfa') setStage({ kind: 'mfa', token: step.token });
    else if (step.kind === 'enrol') setStage({ kind: 'enrol', token: step.token, enrolment: null });
    else if (step.recoveryCodes.length) setStage({ kind: 'codes', codes: step.recoveryCodes });
    else onSignedIn();
  };

  const run = async (e: Event, f: () => Promise<SignInStep>) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      after(await f());
    } catch (ex) {
      setError(`Cannot reach the server: ${String(ex)}`);
    } finally {
      setBusy(false);
    }
  };

  const errorLine = error ? (
    <p role="alert" class="error">
      {error}
    </p>
  ) : null;

  if (stage.kind === 'codes')
    return (
      <section class="signin">
        <h1>Save your recovery codes</h1>
        <div class="card form" data-testid="recovery-codes">
          <p class="warning">
            Two-factor sign-in is on. Each code below signs you in once if you lose your authenticator. They are shown only this once:
            store them somewhere safe now.
          </p>
          <ul class="mono codes">
            {stage.codes.map((c) => (
              <li key={c}>{c}</li>
            ))}
          </ul>
          <button type="button" class="btn primary" onClick={onSignedIn}>
            I saved them, continue
          </button>
        </div>
      </section>
    );

  if (stage.kind === 'mfa' || stage.kind === 'enrol') {
    const enrol = stage.kind === 'enrol';
    return (
      <section class="signin">
        <h1>{enrol ? 'Set up two-factor sign-in' : 'Two-factor sign-in'}</h1>
        <form class="card form" onSubmit={(e) => void run(e, () => signInCode(stage.token, code.trim(), recovery))}>
          {enrol ? (
            stage.enrolment ? (
              <div data-testid="enrolment">
                <p>Your organisation requires a second factor. Scan this code with an authenticator app, then enter the 6-digit code it shows.</p>
                <img class="qr" alt="QR code of the authenticator secret" src={`data:image/svg+xml;charset=utf-8,${encodeURIComponent(stage.enrolment.qr_svg)}`} />
                <p class="small">
                  Or enter the secret by hand: <code data-testid="totp-secret">{stage.enrolment.secret}</code>
                </p>
              </div>
            ) : (
              <p role="status">Preparing the secret…</p>
            )
          ) : (
            <p>Enter the 6-digit code from your authenticator app{recovery ? ', or one of your recovery codes' : ''}.</p>
          )}
          <label>
            {recovery ? 'Recovery code' : 'Authentication code'}
            <input
              name="code"
              autoComplete="one-time-code"
              inputMode={recovery ? 'text' : 'numeric'}
              required
              autoFocus
              value={code}
              onInput={(e) => setCode(e.currentTarget.value)}
            />
          </label>
          {errorLine}
          <button type="submit" class="btn primary" disabled={busy || (enrol && !stage.enrolment)}>
            {busy ? 'Checking…' : 'Verify'}
          </button>
          {!enrol ? (
            <button type="button" class="btn link-btn" onClick={() => setRecovery(!recovery)}>
              {recovery ? 'Use an authenticator code' : 'Use a recovery code instead'}
            </button>
          ) : null}
          <button
            type="button"
            class="btn link-btn"
            onClick={() => {
              setStage({ kind: 'password' });
              setCode('');
              setError(null);
            }}
          >
            Start over
          </button>
        </form>
      </section>
    );
  }

  const returnTo = location.pathname.startsWith('/ui/') ? location.pathname + location.search : '/ui/';
  return (
    <section class="signin">
      <h1>Sign in to Clearsight</h1>
      <form onSubmit={(e) => void run(e, () => signIn(user, password))} class="card form">
        <label>
          User name
          <input name="username" autoComplete="username" required value={user} onInput={(e) => setUser(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        {errorLine}
        <button type="submit" class="btn primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        {providers.length ? (
          <div class="sso" data-testid="sso">
            <p class="muted small">or</p>
            {providers.map((p) => (
              <a key={p.name} class="btn" href={`${p.login_url}${p.login_url.includes('?') ? '&' : '?'}return_to=${encodeURIComponent(returnTo)}`}>
                Sign in with {p.display_name || p.name}
              </a>
            ))}
          </div>
        ) : null}
      </form>
      <p class="muted small">
        First start? The server printed the <code>admin</code> password once in its log (or set it beforehand with{' '}
        <code>CLEARSIGHT_AUTH_ADMIN_PASSWORD</code>).
      </p>
    </section>
  );
}
