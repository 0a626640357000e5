/**
 * A seeded pseudo-random source (xoshiro128**, seeded through splitmix32), so a simulation seed
 * replays the same elections, delays and faults.
 */
import type { Random } from './actor';

/** splitmix32 step: spreads any 32-bit seed (even 0) over the 128-bit xoshiro state. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a over UTF-16 code units: a stable 32-bit hash of a fork label. */
function hashLabel(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Folds any finite number (fractions and values beyond 2^32 included) into 32 bits. */
function foldSeed(seed: number): number {
  if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`);
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 0x1_0000_0000) >>> 0;
  const frac = Math.floor((seed - Math.floor(seed)) * 0x1_0000_0000) >>> 0;
  return (lo ^ Math.imul(hi, 0x9e3779b1) ^ Math.imul(frac, 0x85ebca77)) >>> 0;
}

/**
 * xoshiro128**: small, fast, and well studied; period 2^128 - 1.
 *
 * `fork(label)` derives a stream from this generator's seed and the label only, not from how many
 * numbers were drawn, so each actor's stream (forked by actor id) is the same whatever the spawn
 * order or thread.
 * @example
 * const rng = new SeededRandom(42);
 * const timeoutMs = rng.nextInt(150, 300);
 * const perActor = rng.fork('n1/raft'); // same values on every run with seed 42
 */
export class SeededRandom implements Random {
  readonly seed: number;
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.seed = foldSeed(seed);
    const sm = { s: this.seed };
    this.a = splitmix32(sm);
    this.b = splitmix32(sm);
    this.c = splitmix32(sm);
    this.d = splitmix32(sm);
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  nextFloat(): number {
    return this.nextUint32() / 0x1_0000_0000;
  }

  nextInt(min: number, max: number): number {
    if (!Number.isInteger(min) || !Number.isInteger(max) || max <= min) {
      throw new RangeError(`nextInt(${min}, ${max}): need integers with min < max`);
    }
    return min + Math.floor(this.nextFloat() * (max - min));
  }

  /** An independent deterministic stream named by `label`. */
  fork(label: string): SeededRandom {
    // Mix, fold in the label, mix again: unlike a plain xor, fork('a').fork('b') != fork('b').fork('a').
    const sm = { s: splitmix32({ s: this.seed }) ^ hashLabel(label) };
    return new SeededRandom(splitmix32(sm));
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
