// Bounding a promise by a deadline: the one helper every layer above lib uses for it.
import { EdgeError } from "./errors.ts";

/** Resolves or rejects like `p`, or rejects with a TIMEOUT EdgeError saying `what` after `ms`. */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new EdgeError("TIMEOUT", what)), ms);
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
