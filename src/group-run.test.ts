/**
 * Checks `GroupRun`: one run serves every caller who asked before it began; a caller during a
 * run gets the next one, shared with the others who asked meanwhile; an error reaches exactly
 * the callers of the run that failed, and the next run goes ahead.
 *
 * Layer: shared (unit test).
 */
import { describe, expect, it } from 'vitest';
import { GroupRun } from './group-run.js';

/** An operation whose runs are counted and end when the test says so. */
function controlled() {
  const state = { started: 0, ends: [] as { resolve: () => void; reject: (e: Error) => void }[] };
  const group = new GroupRun(
    () =>
      new Promise<void>((resolve, reject) => {
        state.started += 1;
        state.ends.push({ resolve, reject });
      }),
  );
  return { group, state };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('GroupRun', () => {
  it('starts a run at once when none is under way', async () => {
    const { group, state } = controlled();
    const done = group.run();
    expect(state.started).toBe(1);
    expect(group.isBusy).toBe(true);
    state.ends[0]!.resolve();
    await done;
    expect(group.isBusy).toBe(false);
  });

  it('gives the callers who ask during a run one shared next run', async () => {
    const { group, state } = controlled();
    const first = group.run();
    const second = group.run();
    const third = group.run();
    expect(second).toBe(third);
    expect(state.started).toBe(1);
    let isSecondDone = false;
    void second.then(() => {
      isSecondDone = true;
    });
    state.ends[0]!.resolve();
    await first;
    await turn();
    // The second run began after the first ended: the late callers are not served by the first.
    expect(state.started).toBe(2);
    expect(isSecondDone).toBe(false);
    state.ends[1]!.resolve();
    await second;
    expect(state.started).toBe(2);
  });

  it('rejects the callers of a failed run only, and runs again for the next', async () => {
    const { group, state } = controlled();
    const first = group.run();
    const second = group.run();
    state.ends[0]!.reject(new Error('EIO'));
    await expect(first).rejects.toThrow('EIO');
    await turn();
    expect(state.started).toBe(2);
    state.ends[1]!.resolve();
    await expect(second).resolves.toBeUndefined();
  });

  it('settles once nothing runs or waits to run', async () => {
    const { group, state } = controlled();
    void group.run();
    void group.run().catch(() => undefined);
    let isSettled = false;
    void group.settled().then(() => {
      isSettled = true;
    });
    state.ends[0]!.resolve();
    await turn();
    expect(isSettled).toBe(false);
    state.ends[1]!.reject(new Error('EIO'));
    await turn();
    await turn();
    expect(isSettled).toBe(true);
    expect(group.isBusy).toBe(false);
  });
});
