/** Deletes every entry of `map` whose value matches; returns how many went. */
export function deleteWhere<K, V>(map: Map<K, V>, matches: (value: V) => boolean): number {
  let removed = 0;
  for (const [key, value] of map) {
    if (matches(value)) {
      map.delete(key);
      removed += 1;
    }
  }
  return removed;
}
