// An Io that records what a command prints, for running commands in-process.
import type { Io } from "../../src/cli/command.ts";

export interface CapturedIo extends Io {
  outs: string[];
  errs: string[];
  stdout(): string;
  stderr(): string;
}

export function captureIo(env: Record<string, string | undefined> = {}): CapturedIo {
  const outs: string[] = [];
  const errs: string[] = [];
  return {
    outs,
    errs,
    out: (s) => outs.push(s),
    err: (s) => errs.push(s),
    errIsTTY: false,
    env,
    stdout: () => outs.join("\n"),
    stderr: () => errs.join("\n"),
  };
}
