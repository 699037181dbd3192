// formatSize, the one byte-size formatter of the CLI and the Snapshots page: bytes below 1 KiB as
// they are, then one decimal in the largest binary unit that keeps the number at or above 1.
import { expect, test } from "bun:test";
import { formatSize } from "../../src/lib/duration.ts";

test("bytes, then one decimal in the largest binary unit, up to TiB", () => {
  expect(formatSize(0)).toBe("0 B");
  expect(formatSize(1023)).toBe("1023 B");
  expect(formatSize(1024)).toBe("1.0 KiB");
  expect(formatSize(1536)).toBe("1.5 KiB");
  expect(formatSize(77 * 1024 * 1024)).toBe("77.0 MiB");
  expect(formatSize(3 * 1024 ** 3)).toBe("3.0 GiB");
  expect(formatSize(2048 * 1024 ** 4)).toBe("2048.0 TiB");
});
