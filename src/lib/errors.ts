// Every error a user can see is an EdgeError with a code. One table maps each
// code to its HTTP status; the HTTP layer and the CLI both read it.

export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  TOO_LARGE: 413,
  INTERNAL: 500,
  NO_LEADER: 503,
  UNAVAILABLE: 503,
  TIMEOUT: 504,
  CONFIG: 400,
  DISK: 500,
  CORRUPT: 500,
  RPC: 500,
  ABORTED: 500,
  CANCELLED: 503,
  BAD_SNAPSHOT: 400,
  /** The connection to a peer closed under a request (a transport session ended). */
  DISCONNECTED: 500,
  /** A log index asked for has been compacted into a snapshot. */
  COMPACTED: 500,
  /**
   * This server stopped applying at an entry its binary does not understand (server/apply_stop.ts): a
   * read that needs its state is refused; another server, or this one on a newer binary, answers.
   */
  NOT_APPLIED: 503,
  /** An invariant broke: the process stops rather than corrupt state. */
  ASSERTION_FAILED: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class EdgeError extends Error {
  readonly code: ErrorCode;
  /** Optional structured detail an HTTP handler may render (e.g. the current variable on a CAS conflict). */
  readonly detail: unknown;
  constructor(code: ErrorCode, message: string, detail?: unknown) {
    super(message);
    // A code outside the table would answer no status: refuse it where it is made (the types say so too).
    if (!isErrorCode(code)) throw new TypeError(`error code ${JSON.stringify(code)} is not in the status table`);
    this.name = "EdgeError";
    this.code = code;
    this.detail = detail;
  }
  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

export const badRequest = (m: string) => new EdgeError("BAD_REQUEST", m);
export const permissionDenied = () => new EdgeError("PERMISSION_DENIED", "Permission denied");

/** The code a client reads an HTTP status as: the table's first code for it; 0 (no answer) is UNAVAILABLE. */
export function codeOfStatus(status: number): ErrorCode {
  if (status === 0) return "UNAVAILABLE";
  for (const [code, s] of Object.entries(ERROR_STATUS)) if (s === status) return code as ErrorCode;
  return status >= 400 && status < 500 ? "BAD_REQUEST" : "INTERNAL";
}

export function isErrorCode(s: unknown): s is ErrorCode {
  return typeof s === "string" && Object.hasOwn(ERROR_STATUS, s);
}

/** Whether `e` carries `code`: an EdgeError, or a {code} that came over the wire. The one place codes are tested. */
export function hasCode(e: unknown, ...codes: ErrorCode[]): boolean {
  if (!e || typeof e !== "object" || !("code" in e)) return false;
  const c = (e as { code: unknown }).code;
  return codes.some((code) => code === c);
}

/** The OS error code (ENOENT, ENOSPC, ...) of an fs or socket error: a namespace apart from the table's codes. */
export function errnoOf(e: unknown): string | undefined {
  if (!e || typeof e !== "object" || !("code" in e)) return undefined;
  const c = (e as { code: unknown }).code;
  return c === undefined || c === null ? undefined : String(c);
}

/** Map anything thrown to an EdgeError, keeping codes that came over the wire. */
export function toEdgeError(e: unknown): EdgeError {
  if (e instanceof EdgeError) return e;
  if (e && typeof e === "object" && "code" in e && isErrorCode((e as { code: unknown }).code)) {
    const o = e as { code: ErrorCode; message?: unknown; detail?: unknown };
    return new EdgeError(o.code, String(o.message ?? ""), o.detail);
  }
  return new EdgeError("INTERNAL", e instanceof Error ? e.message : String(e));
}
