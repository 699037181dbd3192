// The sequential specification of one variable as clients observe it: a register holding a value
// or nothing, with write and compare-and-set. CAS compares values: clients CAS on the ModifyIndex
// they read and every write's value is unique, so "index unchanged" and "value unchanged" coincide.
import type { Operation } from "./history.ts";

/** null: the variable is absent. */
export type RegisterState = string | null;

export const INITIAL_STATE: RegisterState = null;

/**
 * The states the register may be in after `op` runs in `state`; empty when `op` cannot run there.
 * An info (indeterminate) write or CAS may also have had no effect, so it offers both outcomes.
 */
export function step(state: RegisterState, op: Operation): RegisterState[] {
  const indeterminate = op.status === "info";
  switch (op.input.kind) {
    case "read":
      if (indeterminate) return [state];
      return op.output === state ? [state] : [];
    case "write":
      return indeterminate ? [op.input.value, state] : [op.input.value];
    case "cas": {
      const applies = state === op.input.expected;
      if (indeterminate) return applies ? [op.input.value, state] : [state];
      return applies ? [op.input.value] : [];
    }
  }
}

export function stateKey(s: RegisterState): string {
  return s === null ? "\u0001" : s;
}

export function describe(op: Operation): string {
  const i = op.input;
  const what =
    i.kind === "read"
      ? `read -> ${JSON.stringify(op.output)}`
      : i.kind === "write"
        ? `write ${JSON.stringify(i.value)}`
        : `cas ${JSON.stringify(i.expected)}@${i.expectedIndex} -> ${JSON.stringify(i.value)}`;
  const end = Number.isFinite(op.completeAt) ? op.completeAt.toFixed(1) : "∞";
  return `#${op.id} p${op.process} ${op.key} ${what} [${op.status}] ${op.invokeAt.toFixed(1)}..${end}${op.note ? ` (${op.note})` : ""}`;
}
