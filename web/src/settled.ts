import { useEffect, useState } from 'preact/hooks';

/** ``value`` once it has stayed the same for ``ms`` (the previous settled value until then): a
 * preview driven by typing queries what the user paused on, not every half-typed prefix. */
export function useSettled<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return settled;
}
