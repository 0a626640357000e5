/**
 * Offline read of a node's durable state (its process must be stopped), through FileStorage's
 * `readFileStorage`.
 */
import * as path from 'node:path';
import type { Entry, HardState } from '../../../actors/raft/core/types';

export interface DurableLog { readonly hardState: HardState; readonly entries: Entry[]; readonly tornBytes: number }

export function readDurableLog(dir: string): Promise<DurableLog> {
  const mod = require(path.resolve(__dirname, '../../../storage/file-storage')) as { readFileStorage(dir: string): Promise<DurableLog> };
  return mod.readFileStorage(dir);
}
