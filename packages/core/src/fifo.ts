/**
 * A first-in, first-out queue without O(n) shifts: an array read from an index, emptied when the
 * index reaches its end, and compacted now and then when it never does (under steady load a line
 * may never empty; without compaction the array would grow by one slot per item that ever waited).
 */
export class Fifo<T> {
  // Invariant: at <= items.length; the queue is items[at..]; slots before `at` are cleared.
  private items: (T | undefined)[] = [];
  private at = 0;

  /** Items in the queue. */
  get size(): number {
    return this.items.length - this.at;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** The first item, left in place; undefined when empty. */
  peek(): T | undefined {
    return this.items[this.at];
  }

  /** Takes the first item off; undefined when empty. */
  shift(): T | undefined {
    if (this.at === this.items.length) return undefined;
    const item = this.items[this.at];
    this.items[this.at++] = undefined;
    if (this.at === this.items.length) {
      this.items.length = 0;
      this.at = 0;
    } else if (this.at >= 1024 && this.at * 2 >= this.items.length) {
      this.items.splice(0, this.at);
      this.at = 0;
    }
    return item;
  }
}
