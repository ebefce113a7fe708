import { formatLocal, formatUTC } from '../time';

/** A timestamp in the user's time zone, UTC on hover. */
export function Time({ ms }: { ms: number }) {
  return (
    <time dateTime={new Date(ms).toISOString()} title={formatUTC(ms)}>
      {formatLocal(ms)}
    </time>
  );
}
