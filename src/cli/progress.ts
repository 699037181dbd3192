// The progress line of long transfers (bytes, rate, elapsed), drawn on stderr only when it is a TTY.
import { formatSize } from "../lib/duration.ts";
import type { Io } from "./command.ts";

const REDRAW_MS = 250;

export interface Progress {
  add(bytes: number): void;
  /** Draws the final state and ends the line. */
  done(): void;
}

export function progressLine(io: Io, verb: string, write: (s: string) => void = (s) => process.stderr.write(s)): Progress {
  const start = performance.now();
  let bytes = 0;
  let last = 0;
  const draw = () => {
    const secs = (performance.now() - start) / 1000;
    const rate = secs > 0 ? bytes / secs : 0;
    write(`\r${verb} ${formatSize(bytes)} (${formatSize(Math.round(rate))}/s, ${secs.toFixed(1)}s)\x1b[K`);
  };
  if (!io.errIsTTY) return { add: () => {}, done: () => {} };
  return {
    add(n) {
      bytes += n;
      const now = performance.now();
      if (now - last >= REDRAW_MS) {
        last = now;
        draw();
      }
    },
    done() {
      draw();
      write("\n");
    },
  };
}
