/**
 * Binary codecs for application payloads. Log entries cross threads and sockets as bytes, encoded
 * once (DESIGN.md section 2: bytes, not object graphs), so every payload type needs a codec.
 */
import { RuntimeError, registerErrorClass } from './errors';

/** Turns values into bytes and back. `decode(encode(v))` equals `v` for every value the codec accepts. */
export interface Codec<T> {
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

/**
 * Bytes that do not decode, or a value that cannot be encoded. Nothing was changed by it.
 * @example try { codec.decode(bytes) } catch (e) { if (e instanceof CodecError) rejectRequest(e.reason) }
 */
export class CodecError extends RuntimeError {
  readonly code = 'Codec';
  constructor(readonly reason: string) {
    super(`codec: ${reason}`);
  }
}
registerErrorClass('Codec', (p) => new CodecError(String(p.reason)));

const encoder = new TextEncoder();
// fatal: invalid UTF-8 must fail loudly rather than decode to U+FFFD and parse as something else.
const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * A codec that stores a value as UTF-8 JSON. Suits commands of a demo state machine; use a custom
 * codec for values JSON cannot represent (bigint, Uint8Array, Map, undefined).
 * @example
 * const codec = jsonCodec<{ op: 'set'; key: string; value: string }>();
 * const bytes = codec.encode({ op: 'set', key: 'a', value: '1' });
 * codec.decode(bytes).key; // 'a'
 */
export function jsonCodec<T>(): Codec<T> {
  return {
    encode(value: T): Uint8Array {
      let text: string | undefined;
      try {
        text = JSON.stringify(value);
      } catch (e) {
        throw new CodecError(`cannot encode as JSON: ${(e as Error).message}`);
      }
      if (text === undefined) throw new CodecError(`cannot encode ${typeof value} as JSON`);
      return encoder.encode(text);
    },
    decode(bytes: Uint8Array): T {
      let text: string;
      try {
        text = decoder.decode(bytes);
      } catch {
        throw new CodecError('bytes are not valid UTF-8');
      }
      try {
        return JSON.parse(text) as T;
      } catch (e) {
        throw new CodecError(`bytes are not valid JSON: ${(e as Error).message}`);
      }
    },
  };
}
