// Bounding a promise by a deadline: the one helper every layer above lib uses for it.
import { EdgeError, type ErrorCode } from "./errors.ts";

/** Resolves or rejects like `p`, or rejects with an EdgeError of `code` (TIMEOUT unless told) saying `what` after `ms`. */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string, code: ErrorCode = "TIMEOUT"): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new EdgeError(code, what)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}
