// The version, git commit and runtime baked into the binary at build time
// (build/build.ts passes them with --define); "dev" values when run from source.

declare const EDGENODE_VERSION: string | undefined;
declare const EDGENODE_GIT_COMMIT: string | undefined;

export const VERSION: string = typeof EDGENODE_VERSION === "string" ? EDGENODE_VERSION : "0.2.0-dev";
export const GIT_COMMIT: string = typeof EDGENODE_GIT_COMMIT === "string" ? EDGENODE_GIT_COMMIT : "unknown";
export const BUN_VERSION: string = typeof Bun !== "undefined" ? Bun.version : "unknown";
