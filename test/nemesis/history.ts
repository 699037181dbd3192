// Histories of client operations on variables: each operation is invoked, then completes as ok
// (took effect, output known), fail (certainly took no effect) or info (indeterminate).

/** What a client asked for. Values written are unique per write so a read names its writer. */
export type OpInput =
  | { kind: "read" }
  | { kind: "write"; value: string | null }
  /** CAS on the ModifyIndex the client read; `expected` is the value that index carried (null: absent, cas=0). */
  | { kind: "cas"; expected: string | null; expectedIndex: number; value: string };

export type OpStatus = "ok" | "fail" | "info";

export interface Operation {
  /** Unique within a history. */
  readonly id: number;
  /** The client (process) that ran it; a process runs one operation at a time. */
  readonly process: number;
  readonly key: string;
  readonly input: OpInput;
  /** ms since the history started (performance.now based). */
  readonly invokeAt: number;
  /** Set on completion; info operations keep Infinity in the checker. */
  completeAt: number;
  status: OpStatus | "pending";
  /** For ok reads: the value seen (null: absent). */
  output?: string | null;
  /** Free text: the server asked, the HTTP status or error. */
  note?: string;
}

/** Records operations as clients invoke and complete them. */
export class History {
  readonly ops: Operation[] = [];
  private readonly t0 = performance.now();
  private nextId = 0;

  now(): number {
    return performance.now() - this.t0;
  }

  invoke(process: number, key: string, input: OpInput): Operation {
    const op: Operation = { id: this.nextId++, process, key, input, invokeAt: this.now(), completeAt: Infinity, status: "pending" };
    this.ops.push(op);
    return op;
  }

  complete(op: Operation, status: OpStatus, output?: string | null, note?: string): void {
    if (op.status !== "pending") throw new Error(`operation ${op.id} completed twice`);
    op.status = status;
    op.completeAt = this.now();
    if (output !== undefined) op.output = output;
    if (note !== undefined) op.note = note;
  }

  /** Operations still pending count as info (the client never learned the outcome). */
  finished(): Operation[] {
    return this.ops.map((o) => (o.status === "pending" ? { ...o, status: "info" as const, completeAt: Infinity } : o));
  }

  toJSON(): unknown {
    return this.finished().map((o) => ({ ...o, completeAt: Number.isFinite(o.completeAt) ? o.completeAt : null }));
  }
}
