// The resource registry (GET /api/v1/resources) and resource health (GET /api/v1/resources/{id}/health),
// docs/health.md. Health is read per resource: at most MAX_HEALTH resources, HEALTH_CONCURRENCY at a time.
import { promGet } from './api';

export type Liveness = 'up' | 'stale' | 'down';
export type HealthStatus = 'healthy' | 'warning' | 'critical' | 'unknown';

export interface Resource {
  id: string;
  kind: 'host' | 'container' | 'service';
  name: string;
  status: Liveness;
  first_seen: number;
  last_seen: number;
  expected_interval_seconds: number;
  sources: string[];
  hostname?: string | null;
  os?: string | null;
  kernel?: string | null;
  machine_id?: string | null;
  agent_version?: string | null;
  image?: string | null;
  state?: string | null;
  parent?: string | null;
  tags: Record<string, string>;
  instances: string[];
}

export interface Signal {
  kind: string;
  name: string;
  status: string;
  detail: string;
  value?: number | null;
  threshold?: number;
  time?: number;
  event_id?: string;
}

export interface Health {
  resource: string;
  status: HealthStatus;
  reason: string;
  evaluated_at: number;
  signals: Signal[];
}

export const MAX_HEALTH = 500;
const HEALTH_CONCURRENCY = 6;

export function listResources(signal?: AbortSignal): Promise<Resource[]> {
  return promGet<Resource[]>('/api/v1/resources', {}, signal);
}

export function resourceHealth(id: string, signal?: AbortSignal): Promise<Health> {
  return promGet<Health>(`/api/v1/resources/${encodeURIComponent(id)}/health`, {}, signal);
}

/** Health of the first MAX_HEALTH resources; a resource whose health cannot be read is left out. */
export async function healthOf(resources: Resource[], signal?: AbortSignal): Promise<Map<string, Health>> {
  const out = new Map<string, Health>();
  const queue = resources.slice(0, MAX_HEALTH).map((r) => r.id);
  const worker = async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      try {
        out.set(id, await resourceHealth(id, signal));
      } catch (e) {
        if (signal?.aborted) throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: HEALTH_CONCURRENCY }, worker));
  return out;
}

/** The UI address of a resource's page. */
export function resourcePath(id: string): string {
  return `/ui/infrastructure/${encodeURIComponent(id)}`;
}

/** The resource id in a `/ui/infrastructure/<id>` path, or null for the list. */
export function resourceIdOf(pathname: string): string | null {
  const rest = pathname.replace(/^\/ui\/infrastructure\/?/, '');
  return rest ? decodeURIComponent(rest) : null;
}

export const HEALTH_ICON: Record<HealthStatus, string> = { healthy: '✔', warning: '▲', critical: '✖', unknown: '?' };
export const LIVENESS_ICON: Record<Liveness, string> = { up: '●', stale: '◐', down: '○' };
