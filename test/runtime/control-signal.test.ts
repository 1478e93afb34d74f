// A worker waiting for its first control message ('run') sleeps on the control word: the
// signal that a message was posted must wake it, not leave it to its wait's timeout (which
// once added a second to every node's start).
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { signalControl } from '../../src/runtime/index.ts';

describe('signalControl', () => {
  it('wakes a thread asleep on the control word at once', async () => {
    const word = new Int32Array(new SharedArrayBuffer(4));
    const ready = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       const word = new Int32Array(workerData.word);
       const ready = new Int32Array(workerData.ready);
       Atomics.store(ready, 0, 1);
       Atomics.notify(ready, 0);
       // Asleep for up to 20 s unless woken.
       parentPort.postMessage(Atomics.wait(word, 0, 0, 20000));`,
      { eval: true, workerData: { word: word.buffer, ready: ready.buffer } },
    );
    try {
      const result = new Promise<string>((resolve) => worker.once('message', resolve));
      while (Atomics.load(ready, 0) === 0) await new Promise((r) => setTimeout(r, 5));
      // Give it time to fall asleep, then signal.
      await new Promise((r) => setTimeout(r, 50));
      signalControl(word);
      const started = performance.now();
      expect(await result).toBe('ok');
      expect(performance.now() - started).toBeLessThan(10_000);
    } finally {
      await worker.terminate();
    }
  });
});
