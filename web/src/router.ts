// A tiny client-side router over the History API. UI routes live under /ui/; `/` is the overview.
import { useEffect, useState } from 'preact/hooks';

export type Page = 'overview' | 'infrastructure' | 'health' | 'dashboards' | 'metrics' | 'logs' | 'events' | 'alerts' | 'admin';
export const PAGES: { page: Page; path: string; title: string }[] = [
  { page: 'overview', path: '/ui/overview', title: 'Overview' },
  { page: 'infrastructure', path: '/ui/infrastructure', title: 'Infrastructure' },
  { page: 'health', path: '/ui/health', title: 'Health map' },
  { page: 'dashboards', path: '/ui/dashboards', title: 'Dashboards' },
  { page: 'metrics', path: '/ui/metrics', title: 'Metrics' },
  { page: 'logs', path: '/ui/logs', title: 'Logs' },
  { page: 'events', path: '/ui/events', title: 'Events' },
  { page: 'alerts', path: '/ui/alerts', title: 'Alerts' },
  { page: 'admin', path: '/ui/admin', title: 'Administration' },
];

/** Permissions of which at least one is needed to see a page's nav entry (the API checks anyway). */
export const PAGE_NEEDS: Partial<Record<Page, string[]>> = { admin: ['keys:manage', 'users:manage', 'audit:read', 'org:manage'] };

export function pageOf(pathname: string): Page | null {
  if (pathname === '/' || pathname === '/ui' || pathname === '/ui/') return 'overview';
  const hit = PAGES.find((p) => pathname === p.path || pathname.startsWith(`${p.path}/`));
  return hit ? hit.page : null;
}

const listeners = new Set<() => void>();

export function navigate(url: string, replace = false): void {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  listeners.forEach((f) => f());
}

export function useLocation(): Location {
  const [, setTick] = useState(0);
  useEffect(() => {
    const f = () => setTick((n) => n + 1);
    listeners.add(f);
    window.addEventListener('popstate', f);
    return () => {
      listeners.delete(f);
      window.removeEventListener('popstate', f);
    };
  }, []);
  return window.location;
}

/** Click handler for in-app links: plain clicks navigate without a reload. */
export function linkClick(e: MouseEvent): void {
  const a = e.currentTarget as HTMLAnchorElement;
  if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(a.getAttribute('href') ?? '/');
}
