import { useState } from 'preact/hooks';
import { signIn } from '../auth';

export function SignIn({ message, onSignedIn }: { message?: string | undefined; onSignedIn: () => void }) {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(message ?? null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const err = await signIn(user, password);
      if (err) setError(err);
      else onSignedIn();
    } catch (ex) {
      setError(`Cannot reach the server: ${String(ex)}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="signin">
      <h1>Sign in to Clearsight</h1>
      <form onSubmit={submit} class="card form">
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
        {error ? (
          <p role="alert" class="error">
            {error}
          </p>
        ) : null}
        <button type="submit" class="btn primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </section>
  );
}
