/** A tiny seeded RandomSource (mulberry32): the same seed gives the same elections, every run. */
import type { RandomSource } from '../../../actors/raft/core/io';

export class SeededRandom implements RandomSource {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  nextFloat(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

/** Returns the given values in turn (then repeats the last): for tests that pin a timeout exactly. */
export class ScriptedRandom implements RandomSource {
  private next = 0;

  constructor(private readonly values: readonly number[]) {}

  nextFloat(): number {
    const v = this.values[Math.min(this.next, this.values.length - 1)]!;
    this.next++;
    return v;
  }
}
