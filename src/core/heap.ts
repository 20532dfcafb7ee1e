/** A binary min-heap under `before(a, b)`: true when `a` must come out first. */
export class Heap<T> {
  private readonly items: T[] = [];

  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const items = this.items;
    items.push(item);
    let index = items.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.before(item, items[parent] as T)) break;
      items[index] = items[parent] as T;
      index = parent;
    }
    items[index] = item;
  }

  pop(): T | undefined {
    const items = this.items;
    if (items.length === 0) return undefined;
    const top = items[0] as T;
    const last = items.pop() as T;
    if (items.length > 0) {
      let index = 0;
      const length = items.length;
      for (;;) {
        const left = 2 * index + 1;
        if (left >= length) break;
        const right = left + 1;
        const child = right < length && this.before(items[right] as T, items[left] as T) ? right : left;
        if (!this.before(items[child] as T, last)) break;
        items[index] = items[child] as T;
        index = child;
      }
      items[index] = last;
    }
    return top;
  }

  /** Removes every item for which `drop` is true; O(n). */
  removeWhere(drop: (item: T) => boolean): void {
    const kept = this.items.filter((item) => !drop(item));
    this.items.length = 0;
    for (const item of kept) this.push(item);
  }
}
