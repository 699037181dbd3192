// The few file operations the log and the stable store need, so the same code runs on the real
// filesystem (real_disk.ts) and on the simulated one (sim_disk.ts). Reads and writes go to the
// page cache synchronously; only sync() and syncDir() wait for the device, and they do it off the event loop.

export interface DiskFile {
  readonly path: string;
  size(): number;
  /** Read up to into.length bytes at position; returns the count read (short at end of file). */
  read(into: Uint8Array, position: number): number;
  /** Write all of data at position (not yet durable). */
  write(data: Uint8Array, position: number): void;
  truncate(length: number): void;
  /** fdatasync: everything written so far is durable when this resolves. */
  sync(): Promise<void>;
  close(): void;
}

export interface Disk {
  mkdirp(dir: string): void;
  /** Names (not paths) of the files directly in dir. */
  list(dir: string): string[];
  exists(path: string): boolean;
  /** Open for reading and writing; creates an empty file when create is true and it is absent. */
  open(path: string, create: boolean): DiskFile;
  rename(from: string, to: string): void;
  unlink(path: string): void;
  /** fsync the directory, making creates, renames and unlinks in it durable. */
  syncDir(dir: string): Promise<void>;
}
