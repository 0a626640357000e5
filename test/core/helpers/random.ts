import type { RandomSource } from '../../../actors/raft/core/io';
/** The runtime's seeded generator serves the core directly (it implements RandomSource). */
export { SeededRandom } from '../../../runtime/random';

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
