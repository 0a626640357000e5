/**
 * The LOCK of a FileStorage data directory: one node per directory, across processes and within
 * one (docs/STORAGE.md, "The LOCK file"). The file holds the pid of the opener and a token of this
 * opening; it is written whole and then hard-linked into place, so of two openers exactly one wins.
 *
 * @example
 * const mine = acquireLock(dir); // throws StorageLockedError while a live process holds it
 * releaseLock(dir, mine);
 */
import { closeSync, linkSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';

const LOCK = 'LOCK';

/** Another live process holds the data directory. */
export class StorageLockedError extends Error {
  readonly code = 'StorageLocked';
  constructor(readonly dir: string, readonly pid: number) {
    super(`${dir} is in use by process ${Number.isNaN(pid) ? '(unknown)' : pid}${pid === process.pid ? ' (this process: another node or storage of it has the directory open)' : ''} (see ${join(dir, 'LOCK')}); one node per directory. If that process is not an actor-raft node using this directory, remove the LOCK file`);
    this.name = 'StorageLockedError';
  }
}

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM'; }
}

/**
 * Creates the LOCK file with its whole content, or returns false when one exists. The content is
 * written to a file of our own first and then hard-linked as LOCK (link fails if LOCK exists), so
 * nobody ever sees a LOCK without its pid: of two openers exactly one gets it.
 */
function createLockFile(path: string, content: string): boolean {
  const staging = `${path}.${process.pid}.${randomUUID()}`;
  const fd = openSync(staging, 'wx');
  try { writeSync(fd, content); } finally { closeSync(fd); }
  try {
    linkSync(staging, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    rmSync(staging, { force: true });
  }
}

/**
 * Takes the directory's LOCK and returns what it wrote there (pid and a token of this opening), or
 * throws StorageLockedError while a live process holds it: this one included, since two storage
 * actors of one process (on any of its threads) must not share a directory either. A LOCK whose
 * process is dead (a SIGKILL leaves it behind) is taken over.
 */
export function acquireLock(dir: string): string {
  const path = join(dir, LOCK);
  const mine = `${process.pid} ${randomUUID()}\n`;
  for (let attempt = 0; attempt < 3; attempt++) {
    if (createLockFile(path, mine)) return mine;
    let pid = Number.NaN;
    try { pid = Number.parseInt(readFileSync(path, 'utf8'), 10); } catch { continue; } // removed meanwhile: try again
    // A LOCK is always whole (see createLockFile): one without a pid was not written by us. Refuse it.
    if (!Number.isSafeInteger(pid) || pid < 1) throw new StorageLockedError(dir, Number.NaN);
    if (pidAlive(pid)) throw new StorageLockedError(dir, pid);
    rmSync(path, { force: true }); // stale: its process is gone
  }
  throw new StorageLockedError(dir, Number.NaN);
}

/** Removes the LOCK if it is still the one this opening wrote. */
export function releaseLock(dir: string, mine: string): void {
  if (mine === '') return; // never took it (a refused start)
  const path = join(dir, LOCK);
  try {
    if (readFileSync(path, 'utf8') === mine) unlinkSync(path);
  } catch { /* already gone */ }
}
