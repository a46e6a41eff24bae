import { useEffect, useState } from 'preact/hooks';

/** A tiny observable value (the current route), read in components with useSignal. */
export function signal<T>(initial: T) {
  let value = initial;
  const listeners = new Set<(v: T) => void>();
  return {
    get: () => value,
    set(next: T) {
      value = next;
      for (const l of listeners) l(next);
    },
    subscribe(fn: (v: T) => void) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
}

export function useSignal<T>(s: ReturnType<typeof signal<T>>): T {
  const [value, setValue] = useState(s.get());
  useEffect(() => {
    setValue(s.get());
    const off = s.subscribe(setValue);
    return () => {
      off();
    };
  }, [s]);
  return value;
}
