import { HEALTH_ICON, LIVENESS_ICON, type HealthStatus, type Liveness } from '../resources';

/** A health status as an icon and a word (colour is never the only carrier). */
export function HealthBadge({ status, reason }: { status: HealthStatus; reason?: string }) {
  return (
    <span class={`badge health-${status}`} title={reason} data-health={status}>
      <span aria-hidden="true">{HEALTH_ICON[status]}</span> {status}
    </span>
  );
}

/** Liveness from the registry (up, stale, down) as an icon and a word. */
export function LivenessBadge({ status }: { status: Liveness }) {
  return (
    <span class={`badge live-${status}`} data-liveness={status}>
      <span aria-hidden="true">{LIVENESS_ICON[status]}</span> {status}
    </span>
  );
}
