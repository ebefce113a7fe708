// A value read now and again every `everyMs` while the component is mounted (and afresh when `deps` change):
// the last value stays while a later read fails, with the error beside it.
import { useEffect, useState } from 'preact/hooks';

export interface Polled<T> {
  value: T | null;
  error: string | null;
  at: number; // when the value was read (ms), 0 before the first
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function usePolled<T>(load: (signal: AbortSignal) => Promise<T>, everyMs: number, deps: unknown[] = []): Polled<T> {
  const [state, setState] = useState<Polled<T>>({ value: null, error: null, at: 0 });
  useEffect(() => {
    const ctl = new AbortController();
    let timer = 0;
    const run = async () => {
      try {
        const value = await load(ctl.signal);
        if (!ctl.signal.aborted) setState({ value, error: null, at: Date.now() });
      } catch (e) {
        if (!ctl.signal.aborted) setState((s) => ({ ...s, error: errText(e) }));
      }
      if (!ctl.signal.aborted) timer = window.setTimeout(run, everyMs);
    };
    void run();
    return () => {
      ctl.abort();
      clearTimeout(timer);
    };
  }, deps);
  return state;
}
