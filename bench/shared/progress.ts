/**
 * Progress of a benchmark run, on stderr: a bar redrawn in place when stderr is a terminal,
 * one plain line per step otherwise (a log, CI). The run announces each step with the time
 * it expects the step to take; the bar moves with the clock within a step and never past it.
 */

export interface Progress {
  /** A new step, expected to take about `expectedMs`. */
  step(label: string, expectedMs: number): void;
  /** A new line of what runs inside the current step (the bar's label; a line of its own otherwise). */
  note(label: string): void;
  /** Ends the display (clears the bar). */
  done(): void;
}

/** A progress display that shows nothing (tests, library callers). */
export const silentProgress: Progress = { step: () => {}, note: () => {}, done: () => {} };

const REDRAW_MS = 200;
const BAR_WIDTH = 24;

export function createProgress(totalExpectedMs: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  return stream.isTTY ? new BarProgress(totalExpectedMs, stream) : new LineProgress(totalExpectedMs, stream);
}

/** Expected time accounted for: steps done, plus the clock within the current one. */
class Accounting {
  private doneMs = 0;
  private stepMs = 0;
  private stepStart = performance.now();
  readonly runStart = performance.now();

  constructor(private readonly totalMs: number) {}

  begin(expectedMs: number): void {
    this.doneMs += this.stepMs;
    this.stepMs = Math.max(0, expectedMs);
    this.stepStart = performance.now();
  }

  fraction(): number {
    const within = Math.min(this.stepMs, performance.now() - this.stepStart);
    return this.totalMs <= 0 ? 0 : Math.min(1, (this.doneMs + within) / this.totalMs);
  }
}

function percent(f: number): string {
  return `${Math.floor(f * 100)}%`.padStart(4);
}

function clock(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

class LineProgress implements Progress {
  private readonly acc: Accounting;

  constructor(
    totalMs: number,
    private readonly stream: NodeJS.WritableStream,
  ) {
    this.acc = new Accounting(totalMs);
  }

  step(label: string, expectedMs: number): void {
    this.acc.begin(expectedMs);
    this.note(label);
  }

  note(label: string): void {
    this.stream.write(`[${percent(this.acc.fraction())}] ${label}\n`);
  }

  done(): void {}
}

class BarProgress implements Progress {
  private readonly acc: Accounting;
  private label = '';
  private readonly timer: NodeJS.Timeout;

  constructor(
    totalMs: number,
    private readonly stream: NodeJS.WriteStream,
  ) {
    this.acc = new Accounting(totalMs);
    this.timer = setInterval(() => this.draw(), REDRAW_MS);
    this.timer.unref();
  }

  step(label: string, expectedMs: number): void {
    this.acc.begin(expectedMs);
    this.note(label);
  }

  note(label: string): void {
    this.label = label;
    this.draw();
  }

  done(): void {
    clearInterval(this.timer);
    this.stream.write('\r\x1b[2K');
  }

  private draw(): void {
    const f = this.acc.fraction();
    const filled = Math.round(f * BAR_WIDTH);
    const elapsed = performance.now() - this.acc.runStart;
    const left = f > 0.02 ? clock((elapsed / f) * (1 - f)) : '?';
    const text = `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${percent(f)} ${clock(elapsed)} elapsed, ~${left} left  ${this.label}`;
    const columns = this.stream.columns ?? 100;
    this.stream.write(`\r\x1b[2K${text.length > columns - 1 ? `${text.slice(0, columns - 2)}…` : text}`);
  }
}
