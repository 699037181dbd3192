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
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class EdgeError extends Error {
  readonly code: ErrorCode;
  /** Optional structured detail an HTTP handler may render (e.g. the current variable on a CAS conflict). */
  readonly detail: unknown;
  constructor(code: ErrorCode, message: string, detail?: unknown) {
    super(message);
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

export function isErrorCode(s: unknown): s is ErrorCode {
  return typeof s === "string" && Object.hasOwn(ERROR_STATUS, s);
}

/** Whether `e` carries `code`: an EdgeError, or a {code} that came over the wire. The one place codes are tested. */
export function hasCode(e: unknown, ...codes: ErrorCode[]): boolean {
  if (!e || typeof e !== "object" || !("code" in e)) return false;
  const c = (e as { code: unknown }).code;
  return codes.some((code) => code === c);
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
