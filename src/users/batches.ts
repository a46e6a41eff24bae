/** An item waiting for its batch, with how to answer it. */
export type Waiting<I, R> = I & { readonly resolve: (result: R) => void; readonly reject: (err: unknown) => void };

/**
 * Items asked for while a batch runs wait, and go together (at most `max`) into the next one: a burst costs a
 * few statements rather than one queued query per item. `run` answers each item of its batch; should it throw
 * nonetheless, the batch's items get that error, so none is left waiting.
 */
export class Batches<I, R> {
  private waiting: Waiting<I, R>[] = [];
  private running = false;

  constructor(
    private readonly max: number,
    private readonly run: (batch: Waiting<I, R>[]) => Promise<void>,
  ) {}

  add(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ ...item, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  /** Puts items back at the head of the line: the next batch takes them first. */
  putBack(items: readonly Waiting<I, R>[]): void {
    this.waiting.unshift(...items);
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting.splice(0, this.max);
        await this.run(batch).catch((err: unknown) => batch.forEach((item) => item.reject(err)));
      }
    } finally {
      this.running = false;
    }
  }
}
