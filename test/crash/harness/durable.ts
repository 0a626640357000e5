/**
 * Offline read of a node's durable state (its process must be stopped), through FileStorage's
 * `readFileStorage`.
 */
import type { Entry, HardState } from '../../../actors/raft/core/types';
import { readFileStorage } from '../../../storage/file-storage';

export interface DurableLog { readonly hardState: HardState; readonly entries: Entry[]; readonly tornBytes: number }

/** Throws CorruptLogError when the directory is damaged beyond a torn tail. */
export function readDurableLog(dir: string): Promise<DurableLog> {
  return readFileStorage(dir);
}
