import { expect } from 'chai';
import { CodecError, jsonCodec } from '../../runtime/codec';
import { createLogger, defaultLogLevel } from '../../runtime/logging';

describe('runtime/codec', () => {
  const codec = jsonCodec<{ op: string; n: number[] }>();

  it('round-trips a value through bytes', () => {
    const bytes = codec.encode({ op: 'set', n: [1, 2] });
    expect(bytes).to.be.instanceOf(Uint8Array);
    expect(codec.decode(bytes)).to.deep.equal({ op: 'set', n: [1, 2] });
  });

  it('throws CodecError on invalid UTF-8, invalid JSON, and unencodable values', () => {
    expect(() => codec.decode(new Uint8Array([0xff, 0xfe]))).to.throw(CodecError, /UTF-8/);
    expect(() => codec.decode(new TextEncoder().encode('{nope'))).to.throw(CodecError, /JSON/);
    expect(() => jsonCodec<unknown>().encode(undefined)).to.throw(CodecError);
    expect(() => jsonCodec<unknown>().encode({ big: 1n })).to.throw(CodecError);
  });
});

describe('runtime/logging', () => {
  it('is silent under mocha unless RAFT_LOG_LEVEL says otherwise', () => {
    const saved = process.env.RAFT_LOG_LEVEL;
    try {
      delete process.env.RAFT_LOG_LEVEL;
      expect(defaultLogLevel()).to.equal('silent');
      expect(createLogger({ name: 't' }).level).to.equal('silent');
      process.env.RAFT_LOG_LEVEL = 'debug';
      expect(createLogger().level).to.equal('debug');
      expect(createLogger({ level: 'warn' }).level).to.equal('warn');
    } finally {
      if (saved === undefined) delete process.env.RAFT_LOG_LEVEL;
      else process.env.RAFT_LOG_LEVEL = saved;
    }
  });
});
