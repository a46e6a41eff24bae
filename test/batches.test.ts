import { describe, expect, it } from 'vitest';
import { Batches, type Waiting } from '../src/users/batches.js';

describe('Batches', () => {
  it('runs the first item alone, then what came meanwhile together, at most max at a time', async () => {
    const seen: number[][] = [];
    let release!: () => void;
    const first = new Promise<void>((resolve) => (release = resolve));
    const batches = new Batches<{ n: number }, number>(2, async (batch) => {
      seen.push(batch.map((b) => b.n));
      if (seen.length === 1) await first;
      for (const b of batch) b.resolve(b.n * 10);
    });
    const answers = [1, 2, 3, 4].map((n) => batches.add({ n }));
    release();
    expect(await Promise.all(answers)).toEqual([10, 20, 30, 40]);
    expect(seen).toEqual([[1], [2, 3], [4]]);
  });

  it('gives the next batch what was put back first', async () => {
    const seen: number[][] = [];
    const batches = new Batches<{ n: number }, number>(10, async (batch) => {
      seen.push(batch.map((b) => b.n));
      const [head, ...rest] = batch as Waiting<{ n: number }, number>[];
      if (seen.length === 2) {
        batches.putBack(rest);
        void batches.add({ n: 9 }).then(() => undefined);
      }
      else rest.forEach((b) => b.resolve(b.n));
      head!.resolve(head!.n);
    });
    const hold = batches.add({ n: 0 });
    const answers = [1, 2, 3].map((n) => batches.add({ n }));
    expect(await Promise.all([hold, ...answers])).toEqual([0, 1, 2, 3]);
    expect(seen).toEqual([[0], [1, 2, 3], [2, 3, 9]]);
  });

  it('answers every item of a batch whose run throws with that error, and goes on with the next', async () => {
    let calls = 0;
    const batches = new Batches<{ n: number }, number>(10, async (batch) => {
      calls++;
      if (calls === 1) throw new Error('database gone');
      for (const b of batch) b.resolve(b.n);
    });
    const failed = batches.add({ n: 1 });
    const later = batches.add({ n: 2 });
    await expect(failed).rejects.toThrow('database gone');
    expect(await later).toBe(2);
  });
});
