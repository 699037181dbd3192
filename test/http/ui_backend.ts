// What the /ui tests share: a backend that answers `call` as the test says and nothing else, and the Hono
// app around it.
import { createApp } from "../../src/http/app.ts";
import type { Backend } from "../../src/server/backend.ts";

export function callOnlyBackend(call: Backend["call"]): Backend {
  return {
    call,
    snapshotSave: async () => {
      throw new Error("no");
    },
    snapshotRestore: async () => ({}),
    self: () => ({ Region: "edge-1" }),
    health: () => ({ ok: true, message: "ok" }),
    metrics: () => "",
  };
}

export const app = (b: Backend) => createApp(b, { maxRequestBody: 1 << 20, maxConnsPerClient: 10 });
