/**
 * Sets `key` in a cache map held to `max` entries: when full, the oldest entry goes (a Map iterates in
 * insertion order, and `key` is set anew at the end), never every entry at once.
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  if (map.size >= max) map.delete(map.keys().next().value as K);
  map.set(key, value);
}
