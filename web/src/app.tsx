import type { ComponentType } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { may, signOut, whoAmI, type AuthState } from './auth';
import { AdminPage } from './pages/Admin';
import { AlertsPage } from './pages/Alerts';
import { DashboardsPage } from './pages/Dashboards';
import { EventsPage } from './pages/Events';
import { HealthMapPage } from './pages/HealthMap';
import { InfrastructurePage } from './pages/Infrastructure';
import { OverviewPage } from './pages/Overview';
import { SignIn } from './pages/SignIn';
import { linkClick, PAGE_NEEDS, pageOf, PAGES, useLocation, type Page } from './router';
import { currentTheme, setTheme, type Theme } from './theme';
import { timeZoneName, utcOffset } from './time';

// The metrics explorer and the logs page carry a code editor (CodeMirror): loaded on first visit only.
type Lazy = ComponentType | null | Error;
const lazyPages: Record<'metrics' | 'logs', { mod: ComponentType | null; load: () => Promise<ComponentType> }> = {
  metrics: { mod: null, load: () => import('./pages/Metrics').then((m) => m.MetricsPage) },
  logs: { mod: null, load: () => import('./pages/Logs').then((m) => m.LogsPage) },
};
function useLazyPage(page: Page | null): Lazy {
  const entry = page === 'metrics' || page === 'logs' ? lazyPages[page] : null;
  const [, setTick] = useState(0);
  const [failed, setFailed] = useState<Error | null>(null);
  useEffect(() => {
    if (!entry || entry.mod) return;
    entry
      .load()
      .then((m) => {
        entry.mod = m;
        setTick((n) => n + 1);
      })
      .catch((e: unknown) => setFailed(new Error(String(e))));
  }, [page]);
  return failed ?? entry?.mod ?? null;
}

function NotFound() {
  return (
    <section>
      <h1>Page not found</h1>
      <p>
        There is no page at this address. Go to the <a href="/ui/overview" onClick={linkClick}>overview</a>.
      </p>
    </section>
  );
}

export function App() {
  const loc = useLocation();
  const page: Page | null = pageOf(loc.pathname);
  const [auth, setAuth] = useState<AuthState>({ kind: 'loading' });
  const [theme, setThemeState] = useState<Theme>(currentTheme());
  const lazy = useLazyPage(page);

  useEffect(() => {
    whoAmI().then(setAuth);
  }, []);

  useEffect(() => {
    const t = PAGES.find((p) => p.page === page)?.title ?? 'Not found';
    document.title = `${t} · Clearsight`;
  }, [page]);

  const toggleTheme = () => {
    const next: Theme = theme === 'dark' ? 'light' : 'dark';
    setTheme(next);
    setThemeState(next);
  };

  let content;
  if (auth.kind === 'loading') content = <p role="status">Loading…</p>;
  else if (auth.kind === 'signin') content = <SignIn message={auth.message} onSignedIn={() => whoAmI().then(setAuth)} />;
  else if (auth.kind === 'error') content = <p role="alert" class="error">{auth.message}. Reload the page to retry.</p>;
  else if (page === 'overview') content = <OverviewPage />;
  else if (page === 'infrastructure') content = <InfrastructurePage />;
  else if (page === 'health') content = <HealthMapPage />;
  else if (page === 'dashboards') content = <DashboardsPage mayEdit={may(auth, 'dashboards:manage')} />;
  else if (page === 'alerts') content = <AlertsPage maySilence={may(auth, 'silences:manage')} mayRules={may(auth, 'rules:manage')} user={auth.kind === 'user' ? auth.name : 'local user'} />;
  else if (page === 'events') content = <EventsPage mayWrite={may(auth, 'events:write')} />;
  else if (page === 'admin') content = (
      <AdminPage mayKeys={may(auth, 'keys:manage')} mayUsers={may(auth, 'users:manage')} mayAudit={may(auth, 'audit:read')} mayUsage={may(auth, 'org:manage')} mayOrgs={may(auth, 'orgs:cross')} org={auth.kind === 'user' ? auth.org : ''} />
    );
  else if (page === 'metrics' || page === 'logs') {
    const what = page === 'metrics' ? 'metrics explorer' : 'logs explorer';
    if (lazy instanceof Error) content = <p role="alert" class="error">The {what} failed to load: {lazy.message}. Reload the page to retry.</p>;
    else if (lazy) {
      const M = lazy;
      content = <M />;
    } else content = <p role="status">Loading the {what}…</p>;
  } else content = <NotFound />;

  const signedIn = auth.kind === 'user' || auth.kind === 'anonymous';
  return (
    <div class="shell">
      <a class="skip-link" href="#main">Skip to content</a>
      <header class="topbar">
        <a class="brand" href="/ui/overview" onClick={linkClick}>
          Clearsight
        </a>
        {signedIn ? (
          <nav aria-label="Main">
            <ul>
              {PAGES.filter((p) => {
                const needs = PAGE_NEEDS[p.page] ?? [];
                return needs.length === 0 || needs.some((x) => may(auth, x));
              }).map((p) => (
                <li key={p.page}>
                  <a href={p.path} onClick={linkClick} aria-current={p.page === page ? 'page' : undefined}>
                    {p.title}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
        ) : null}
        <div class="topbar-end">
          <span class="tz" title={`Times are shown in ${timeZoneName()} (${utcOffset()}); hover a time for UTC`}>
            {timeZoneName()} <span class="muted">({utcOffset()})</span>
          </span>
          <button type="button" class="btn" onClick={toggleTheme} aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}>
            {theme === 'dark' ? 'Light theme' : 'Dark theme'}
          </button>
          {auth.kind === 'user' ? (
            <span class="user" data-testid="user">
              <span title={`organisation ${auth.org}; roles: ${auth.roles.join(', ') || 'none'}`}>{auth.name}</span>{' '}
              <button type="button" class="btn" onClick={() => signOut().then(() => whoAmI().then(setAuth))}>
                Sign out
              </button>
            </span>
          ) : auth.kind === 'anonymous' ? (
            <span class="user muted" title="Requests from this machine act as the anonymous user (auth.anonymous: loopback)">
              Local access
            </span>
          ) : null}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {content}
      </main>
    </div>
  );
}
