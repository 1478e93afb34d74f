/**
 * The in-flight slots of one client endpoint: at most `max` calls hold one at a time; more
 * wait in line (oldest first) until a slot is released, their deadline passes or their signal
 * aborts. A slot released while calls wait goes straight to the next in line. Both client
 * endpoints (rings: endpoint.ts; TCP: client/) keep their calls in flight with one.
 */
export class SlotGate {
  private inFlight = 0;
  /** Calls waiting for a slot, oldest first; each is handed a slot (true) or given up (false). */
  private readonly waiters: ((granted: boolean) => void)[] = [];

  constructor(private readonly max: number) {}

  tryAcquire(): boolean {
    if (this.inFlight >= this.max || this.waiters.length > 0) return false;
    this.inFlight++;
    return true;
  }

  /** Waits for a slot until `deadline` (a performance.now() time) or the signal; false if none came or `closed`. */
  acquire(deadline: number, signal: AbortSignal | undefined, closed: boolean): Promise<boolean> {
    if (closed || signal?.aborted === true) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const settle = (granted: boolean): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(granted);
      };
      // Given up: leave the queue (a slot handed over later goes to the next in line).
      const giveUp = (): void => {
        const at = this.waiters.indexOf(settle);
        if (at >= 0) this.waiters.splice(at, 1);
        settle(false);
      };
      const onAbort = (): void => giveUp();
      const timer = setTimeout(giveUp, Math.max(0, deadline - performance.now()));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(settle);
    });
  }

  release(): void {
    // A waiting call takes the slot over directly; otherwise it is free.
    const next = this.waiters.shift();
    if (next !== undefined) next(true);
    else this.inFlight--;
  }

  /** Gives up every waiting call (the endpoint closed). */
  failWaiters(): void {
    for (const w of this.waiters.splice(0)) w(false);
  }
}
